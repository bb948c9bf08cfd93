package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/customers/customer"
)

// registerRequest is the body of POST /v1/customers.
type registerRequest struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

// decodeRegister decodes a registration strictly (see httpkit.DecodeJSON);
// the domain validates the values.
func decodeRegister(w http.ResponseWriter, r *http.Request) (registerRequest, error) {
	var in registerRequest
	err := httpkit.DecodeJSON(w, r, &in)
	return in, err
}

// patchRequest is the body of PATCH /v1/customers/{id} (JSON merge patch
// semantics: absent members stay unchanged; null is refused, nothing can be
// unset).
type patchRequest struct {
	Email  json.RawMessage `json:"email"`
	Name   json.RawMessage `json:"name"`
	Status json.RawMessage `json:"status"`
}

// decodePatch decodes a PATCH body into a customer.Change. Members must be
// strings when present; a null or non-string member is a 422 naming it.
func decodePatch(w http.ResponseWriter, r *http.Request) (customer.Change, error) {
	var in patchRequest
	if err := httpkit.DecodeJSON(w, r, &in); err != nil {
		return customer.Change{}, err
	}
	var f problem.Fields
	ch := customer.Change{
		Email: optionalString(&f, in.Email, "email"),
		Name:  optionalString(&f, in.Name, "name"),
	}
	if s := optionalString(&f, in.Status, "status"); s != nil {
		st := customer.Status(*s)
		ch.Status = &st
	}
	return ch, f.Err()
}

// optionalString returns nil for an absent member, the string for a JSON
// string, and records a field error for anything else.
func optionalString(f *problem.Fields, raw json.RawMessage, field string) *string {
	if raw == nil {
		return nil
	}
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil || s == nil {
		f.Add("/"+field, "must be a string (it cannot be unset)")
		return nil
	}
	return s
}

// decodeListQuery reads ?email, ?status, ?page and ?size. Errors are 400
// problems naming the parameter.
func decodeListQuery(q url.Values) (customer.Filter, hal.Page, error) {
	page, err := hal.ParsePage(q)
	if err != nil {
		return customer.Filter{}, hal.Page{}, err
	}
	f := customer.Filter{Limit: page.Size, Offset: page.Offset()}
	var errs problem.Fields
	if vs, ok := q["email"]; ok {
		if errs.Check(len(vs) == 1 && vs[0] != "" && len(vs[0]) <= customer.MaxEmailLen && utf8.ValidString(vs[0]), "email", "must be given once, 1 to 254 bytes of UTF-8") {
			f.Email = customer.NormalizeEmail(vs[0])
		}
	}
	if vs, ok := q["status"]; ok {
		if errs.Check(len(vs) == 1 && customer.Status(vs[0]).Valid(), "status", "must be given once: active or suspended") {
			f.Status = customer.Status(vs[0])
		}
	}
	if len(errs) > 0 {
		p := problem.BadRequest("invalid query parameters")
		p.Errors = errs
		return customer.Filter{}, hal.Page{}, p
	}
	return f, page, nil
}
