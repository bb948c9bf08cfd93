// Package validation collects the invalid fields of a request in a
// service's domain package, as one error (*Error) that the service's HTTP
// layer turns into 422 problem+json, and holds the field rules that more
// than one service applies: a plain email address (Email) and a person's
// name (Name). It imports no transport or storage package, so domain
// packages may use it.
package validation

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// FieldError names one invalid field, by its JSON pointer without the
// leading slash (e.g. "email", "price/amount"), and why.
type FieldError struct {
	Field   string
	Message string
}

// Error lists the invalid fields of a request about one kind of thing
// (Subject: "customer"): "invalid customer: email: is required; …".
type Error struct {
	Subject string
	Fields  []FieldError
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid " + e.Subject + ": " + strings.Join(parts, "; ")
}

// Fields collects the invalid fields of one request about Subject.
type Fields struct {
	Subject string
	list    []FieldError
}

// Add records that field is invalid and why.
func (f *Fields) Add(field, msg string) { f.list = append(f.list, FieldError{field, msg}) }

// Err returns nil when no field was added, else an *Error with the fields in
// the order they were added.
func (f *Fields) Err() error {
	if len(f.list) == 0 {
		return nil
	}
	return &Error{Subject: f.Subject, Fields: f.list}
}

// Email adds field to f unless email is a plain address like
// name@example.com (no display name, a dot in the domain) of valid UTF-8 and
// at most max bytes. It does not normalise: callers trim and lower-case first.
func Email(f *Fields, field, email string, max int) {
	switch {
	case email == "":
		f.Add(field, "is required")
	case !utf8.ValidString(email):
		f.Add(field, "must be valid UTF-8")
	case len(email) > max:
		f.Add(field, fmt.Sprintf("must be at most %d bytes", max))
	default:
		a, err := mail.ParseAddress(email)
		if err != nil || a.Address != email || a.Name != "" || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
			f.Add(field, "must be a plain email address like name@example.com")
		}
	}
}

// Name adds field to f unless name is non-empty valid UTF-8 of at most max
// characters (runes) without control characters.
func Name(f *Fields, field, name string, max int) {
	switch {
	case name == "":
		f.Add(field, "is required")
	case !utf8.ValidString(name):
		f.Add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(name) > max:
		f.Add(field, fmt.Sprintf("must be at most %d characters", max))
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		f.Add(field, "must not contain control characters")
	}
}
