package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/catalog/product"
)

// money is the JSON shape of an amount: {"amount": 1299, "currency": "EUR"}.
type money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// addRequest is the body of POST /v1/products.
type addRequest struct {
	SKU         string `json:"sku"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Price       money  `json:"price"`
}

// decodeAdd decodes a new product strictly (see httpkit.DecodeJSON); the
// domain validates the values.
func decodeAdd(w http.ResponseWriter, r *http.Request) (addRequest, error) {
	var in addRequest
	err := httpkit.DecodeJSON(w, r, &in)
	return in, err
}

// patchRequest is the body of PATCH /v1/products/{id} (merge patch: absent
// members stay unchanged; null is refused, nothing can be unset). The SKU
// never changes.
type patchRequest struct {
	Name        json.RawMessage `json:"name"`
	Description json.RawMessage `json:"description"`
	Price       json.RawMessage `json:"price"`
	Status      json.RawMessage `json:"status"`
}

// decodePatch decodes a PATCH body into a product.Change. A member of the
// wrong type or null is a 422 naming it.
func decodePatch(w http.ResponseWriter, r *http.Request) (product.Change, error) {
	var in patchRequest
	if err := httpkit.DecodeJSON(w, r, &in); err != nil {
		return product.Change{}, err
	}
	var f problem.Fields
	ch := product.Change{
		Name:        optional[string](&f, in.Name, "name", "must be a string"),
		Description: optional[string](&f, in.Description, "description", "must be a string"),
	}
	if m := optional[money](&f, in.Price, "price", `must be an object {"amount": <cents>, "currency": "EUR"} with no other members`); m != nil {
		ch.Price = &product.Money{Amount: m.Amount, Currency: m.Currency}
	}
	if s := optional[string](&f, in.Status, "status", "must be a string"); s != nil {
		st := product.Status(*s)
		ch.Status = &st
	}
	return ch, f.Err()
}

// optional returns nil for an absent member and the decoded value for a
// member of type T (strictly: unknown object members are refused); null or
// any other value records msg for field.
func optional[T any](f *problem.Fields, raw json.RawMessage, field, msg string) *T {
	if raw == nil {
		return nil
	}
	var v *T
	if err := strictUnmarshal(raw, &v); err != nil || v == nil {
		f.Add("/"+field, msg+" (it cannot be unset)")
		return nil
	}
	return v
}

func strictUnmarshal(raw []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// decodeListQuery reads ?status, ?sku, ?page and ?size. Errors are 400
// problems naming the parameter.
func decodeListQuery(q url.Values) (product.Filter, hal.Page, error) {
	page, err := hal.ParsePage(q)
	if err != nil {
		return product.Filter{}, hal.Page{}, err
	}
	f := product.Filter{Limit: page.Size, Offset: page.Offset()}
	var errs problem.Fields
	if vs, ok := q["status"]; ok {
		if errs.Check(len(vs) == 1 && product.Status(vs[0]).Valid(), "status", "must be given once: active or retired") {
			f.Status = product.Status(vs[0])
		}
	}
	if vs, ok := q["sku"]; ok {
		sku := ""
		if len(vs) == 1 {
			sku = product.NormalizeSKU(vs[0])
		}
		if errs.Check(product.ValidSKU(sku), "sku", "must be given once: 1 to 64 letters, digits or dashes") {
			f.SKU = sku
		}
	}
	if len(errs) > 0 {
		p := problem.BadRequest("invalid query parameters")
		p.Errors = errs
		return product.Filter{}, hal.Page{}, p
	}
	return f, page, nil
}
