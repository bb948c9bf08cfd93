package customer_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/services/customers/customer"
)

var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestRegister(t *testing.T) {
	tests := []struct {
		email, name string
		wantFields  []string
		wantEmail   string
	}{
		{"Ann@Example.com", "Ann", nil, "ann@example.com"},
		{"  bob@example.org ", " Bob ", nil, "bob@example.org"},
		{"", "", []string{"email", "name"}, ""},
		{"ann", "Ann", []string{"email"}, ""},
		{"ann@localhost", "Ann", []string{"email"}, ""},
		{"Ann <ann@example.com>", "Ann", []string{"email"}, ""},
		{"a@b.co, c@d.co", "Ann", []string{"email"}, ""},
		{strings.Repeat("a", 250) + "@b.co", "Ann", []string{"email"}, ""},
		{"ann@example.com", "A\tB", []string{"name"}, ""},
		{"ann@example.com", strings.Repeat("n", 201), []string{"name"}, ""},
		{"ann@example.com", "\xff", []string{"name"}, ""},
	}
	for _, tt := range tests {
		c, err := customer.Register("id", tt.email, tt.name, now)
		var ve *customer.ValidationError
		if tt.wantFields == nil {
			if err != nil || c.Email != tt.wantEmail || c.Status != customer.StatusActive || c.Version != 1 {
				t.Errorf("Register(%q, %q) = %+v, %v", tt.email, tt.name, c, err)
			}
			continue
		}
		if !errors.As(err, &ve) {
			t.Errorf("Register(%q, %q): error %v, want ValidationError", tt.email, tt.name, err)
			continue
		}
		var got []string
		for _, f := range ve.Fields {
			got = append(got, f.Field)
		}
		if strings.Join(got, ",") != strings.Join(tt.wantFields, ",") {
			t.Errorf("Register(%q, %q): fields %v, want %v", tt.email, tt.name, got, tt.wantFields)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestApply(t *testing.T) {
	base, err := customer.Register("id", "ann@example.com", "Ann", now)
	if err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Hour)
	tests := []struct {
		name        string
		ch          customer.Change
		wantChanged bool
		wantErr     bool
	}{
		{"nothing", customer.Change{}, false, false},
		{"same values", customer.Change{Name: ptr("Ann"), Email: ptr("ANN@example.com"), Status: ptr(customer.StatusActive)}, false, false},
		{"name", customer.Change{Name: ptr("Ann Lee")}, true, false},
		{"suspend", customer.Change{Status: ptr(customer.StatusSuspended)}, true, false},
		{"bad status", customer.Change{Status: ptr(customer.Status("removed"))}, false, true},
		{"bad email keeps everything", customer.Change{Name: ptr("New"), Email: ptr("nope")}, false, true},
	}
	for _, tt := range tests {
		c := base
		changed, err := c.Apply(tt.ch, later)
		if changed != tt.wantChanged || (err != nil) != tt.wantErr {
			t.Errorf("%s: changed %v err %v", tt.name, changed, err)
		}
		switch {
		case changed && (c.Version != 2 || !c.UpdatedAt.Equal(later)):
			t.Errorf("%s: version %d updated %v", tt.name, c.Version, c.UpdatedAt)
		case !changed && c != base:
			t.Errorf("%s: customer modified without a change: %+v", tt.name, c)
		}
	}
}
