package validation_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/validation"
)

func TestFields(t *testing.T) {
	f := validation.Fields{Subject: "customer"}
	if err := f.Err(); err != nil {
		t.Fatalf("no field added: %v", err)
	}
	f.Add("email", "is required")
	f.Add("name", "is required")
	var ve *validation.Error
	if err := f.Err(); !errors.As(err, &ve) || len(ve.Fields) != 2 || ve.Fields[1].Field != "name" ||
		err.Error() != "invalid customer: email: is required; name: is required" {
		t.Fatalf("Err() = %v", err)
	}
}

func TestEmailAndName(t *testing.T) {
	for _, c := range []struct {
		email, name string
		want        []string // messages, email's first
	}{
		{"ann@example.com", "Ann", nil},
		{"", "", []string{"is required", "is required"}},
		{"Ann <ann@example.com>", "A\x01", []string{"must be a plain email address like name@example.com", "must not contain control characters"}},
		{"ann@localhost", strings.Repeat("é", 11), []string{"must be a plain email address like name@example.com", "must be at most 10 characters"}},
		{strings.Repeat("a", 20) + "@example.com", "\xff", []string{"must be at most 30 bytes", "must be valid UTF-8"}},
		{"\xff@example.com", strings.Repeat("é", 10), []string{"must be valid UTF-8"}},
	} {
		f := validation.Fields{Subject: "x"}
		validation.Email(&f, "email", c.email, 30)
		validation.Name(&f, "name", c.name, 10)
		var got []string
		if ve, ok := f.Err().(*validation.Error); ok {
			for _, fe := range ve.Fields {
				got = append(got, fe.Message)
			}
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("Email(%q), Name(%q): %q, want %q", c.email, c.name, got, c.want)
		}
	}
}
