// Package problem implements RFC 9457 "Problem Details for HTTP APIs".
//
// A *Problem is both an error and the body written to the client as
// application/problem+json. Handlers build one with New or one of the
// shortcuts (NotFound, Conflict, Validation, ...) and write it with Write;
// each service maps its domain errors to problems in exactly one function.
package problem

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Type URIs used by the platform (URNs: identifiers, not documents). "about:blank" (the RFC 9457 default) is used
// when the HTTP status says it all; the others identify a problem class that
// clients may want to handle specially.
const (
	TypeBlank      = "about:blank"
	TypeValidation = "urn:sagittarius:problem:validation"
	TypeConflict   = "urn:sagittarius:problem:state-conflict"
	TypeStale      = "urn:sagittarius:problem:stale-version"
)

// Problem is an RFC 9457 problem detail. The zero Type means "about:blank".
// Errors lists field-level validation errors (an extension member).
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
}

// FieldError names one invalid input. Field is a JSON pointer into the request
// body ("/email", "/lines/0/quantity") or the name of a query parameter
// ("page"); Message says what is wrong in plain English.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// New returns a problem of type about:blank whose title is the HTTP status text.
func New(status int, detail string) *Problem {
	return &Problem{Type: TypeBlank, Title: http.StatusText(status), Status: status, Detail: detail}
}

// Newf is New with a formatted detail.
func Newf(status int, format string, args ...any) *Problem {
	return New(status, fmt.Sprintf(format, args...))
}

// Error implements error: "404 Not Found: customer 42 does not exist".
func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", p.Status, p.Title)
	if p.Detail != "" {
		b.WriteString(": ")
		b.WriteString(p.Detail)
	}
	for _, fe := range p.Errors {
		fmt.Fprintf(&b, "; %s: %s", fe.Field, fe.Message)
	}
	return b.String()
}

// BadRequest is a 400 for input that cannot be parsed at all.
func BadRequest(detail string) *Problem { return New(http.StatusBadRequest, detail) }

// NotFound is a 404.
func NotFound(detail string) *Problem { return New(http.StatusNotFound, detail) }

// Conflict is a 409 for a request that the resource's current state forbids.
func Conflict(detail string) *Problem {
	p := New(http.StatusConflict, detail)
	p.Type = TypeConflict
	return p
}

// PreconditionFailed is a 412 for a stale If-Match.
func PreconditionFailed(detail string) *Problem {
	p := New(http.StatusPreconditionFailed, detail)
	p.Type = TypeStale
	return p
}

// Validation is a 422 listing the invalid fields.
func Validation(errs ...FieldError) *Problem {
	p := New(http.StatusUnprocessableEntity, "the request contains invalid fields")
	p.Type = TypeValidation
	p.Title = "Validation failed"
	p.Errors = errs
	return p
}

// MethodNotAllowed is a 405; the caller must also set the Allow header.
func MethodNotAllowed(method string) *Problem {
	return Newf(http.StatusMethodNotAllowed, "method %s is not allowed on this resource", method)
}

// Internal is a 500 that reveals nothing about the cause.
func Internal() *Problem {
	return New(http.StatusInternalServerError, "an unexpected error occurred; it has been logged")
}

// Fields collects field errors while validating a request. The zero value is
// ready to use. It is not safe for concurrent use.
type Fields []FieldError

// Add records that field is invalid.
func (f *Fields) Add(field, message string) {
	*f = append(*f, FieldError{Field: field, Message: message})
}

// Check records message for field when ok is false, and returns ok.
func (f *Fields) Check(ok bool, field, message string) bool {
	if !ok {
		f.Add(field, message)
	}
	return ok
}

// Err returns nil when no field error was recorded, else a 422 *Problem.
func (f Fields) Err() error {
	if len(f) == 0 {
		return nil
	}
	return Validation(f...)
}

// From returns the *Problem in err's chain, or nil.
func From(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return nil
}

// Write writes p as application/problem+json with status p.Status. When
// p.Instance is empty it is set to the request path of r (r may be nil), as
// the client saw it: behind the gateway, prefixed with X-Forwarded-Prefix.
// A missing status or title is filled in, so Write never sends an invalid
// document. Write does not modify p.
func Write(w http.ResponseWriter, r *http.Request, p *Problem) {
	out := *p
	if out.Status < 400 || out.Status > 599 {
		out.Status = http.StatusInternalServerError
	}
	if out.Type == "" {
		out.Type = TypeBlank
	}
	if out.Title == "" {
		out.Title = http.StatusText(out.Status)
	}
	if out.Instance == "" && r != nil && r.URL != nil {
		out.Instance = forwardedPrefix(r) + r.URL.Path
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil { // cannot happen with these field types; keep the contract anyway
		buf.Reset()
		buf.WriteString(`{"type":"about:blank","title":"Internal Server Error","status":500}` + "\n")
		out.Status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", fmt.Sprint(buf.Len()))
	h.Del("ETag")
	h.Del("Location")
	w.WriteHeader(out.Status)
	_, _ = w.Write(buf.Bytes())
}

// forwardedPrefix returns the gateway's X-Forwarded-Prefix ("/orders") when
// it is one plain path segment, else "".
func forwardedPrefix(r *http.Request) string {
	p := r.Header.Get("X-Forwarded-Prefix")
	if len(p) < 2 || len(p) > 64 || p[0] != '/' {
		return ""
	}
	for _, c := range p[1:] {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return ""
		}
	}
	return p
}
