package product_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/services/catalog/product"
)

var (
	now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	eur = func(c int64) product.Money { return product.Money{Amount: c, Currency: "EUR"} }
)

func fieldsOf(err error) string {
	var ve *product.ValidationError
	if !errors.As(err, &ve) {
		return ""
	}
	var fs []string
	for _, f := range ve.Fields {
		fs = append(fs, f.Field)
	}
	return strings.Join(fs, ",")
}

func TestAdd(t *testing.T) {
	tests := []struct {
		sku, name, desc string
		price           product.Money
		wantFields      string
	}{
		{"tee-42", "T-shirt", "Cotton", eur(1999), ""},
		{" A1 ", " Mug ", "", eur(1), ""},
		{"", "", "", product.Money{}, "sku,name,price/amount,price/currency"},
		{"-A", "X", "", eur(1), "sku"},
		{"A B", "X", "", eur(1), "sku"},
		{strings.Repeat("A", 65), "X", "", eur(1), "sku"},
		{"A", "X", strings.Repeat("d", 2001), eur(1), "description"},
		{"A", "X", "line\nbreak ok", eur(1), ""},
		{"A", "X\x07", "", eur(1), "name"},
		{"A", "X", "", eur(0), "price/amount"},
		{"A", "X", "", eur(-5), "price/amount"},
		{"A", "X", "", eur(product.MaxAmount + 1), "price/amount"},
		{"A", "X", "", product.Money{Amount: 1, Currency: "USD"}, "price/currency"},
	}
	for _, tt := range tests {
		p, err := product.Add("id", tt.sku, tt.name, tt.desc, tt.price, now)
		if got := fieldsOf(err); got != tt.wantFields || (tt.wantFields == "" && err != nil) {
			t.Errorf("Add(%q, %q, %v): fields %q (%v), want %q", tt.sku, tt.name, tt.price, got, err, tt.wantFields)
		}
		if err == nil && (p.SKU != strings.ToUpper(strings.TrimSpace(tt.sku)) || p.Status != product.StatusActive || p.Version != 1) {
			t.Errorf("Add(%q) = %+v", tt.sku, p)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestApply(t *testing.T) {
	active, err := product.Add("id", "A1", "Mug", "", eur(500), now)
	if err != nil {
		t.Fatal(err)
	}
	retired := active
	retired.Status = product.StatusRetired
	later := now.Add(time.Hour)
	tests := []struct {
		name    string
		from    product.Product
		ch      product.Change
		want    product.Outcome
		wantErr error
	}{
		{"nothing", active, product.Change{}, product.Unchanged, nil},
		{"same price", active, product.Change{Price: ptr(eur(500))}, product.Unchanged, nil},
		{"price", active, product.Change{Price: ptr(eur(650))}, product.Updated, nil},
		{"details", active, product.Change{Name: ptr("Big mug"), Description: ptr("400 ml")}, product.Updated, nil},
		{"retire", active, product.Change{Status: ptr(product.StatusRetired)}, product.Retired, nil},
		{"retire with a last price", active, product.Change{Status: ptr(product.StatusRetired), Price: ptr(eur(1))}, product.Retired, nil},
		{"re-retire", retired, product.Change{Status: ptr(product.StatusRetired)}, product.Unchanged, nil},
		{"reactivate", retired, product.Change{Status: ptr(product.StatusActive)}, product.Unchanged, product.ErrRetired},
		{"price of retired", retired, product.Change{Price: ptr(eur(1))}, product.Unchanged, product.ErrRetired},
		{"unknown status", active, product.Change{Status: ptr(product.Status("deleted"))}, product.Unchanged, &product.ValidationError{}},
		{"invalid price", active, product.Change{Price: ptr(product.Money{Amount: 5, Currency: "eur"})}, product.Unchanged, &product.ValidationError{}},
	}
	for _, tt := range tests {
		p := tt.from
		got, err := p.Apply(tt.ch, later)
		if got != tt.want {
			t.Errorf("%s: outcome %v, want %v", tt.name, got, tt.want)
		}
		var ve *product.ValidationError
		switch want := tt.wantErr.(type) {
		case nil:
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
		case *product.ValidationError:
			_ = want
			if !errors.As(err, &ve) {
				t.Errorf("%s: error %v, want a ValidationError", tt.name, err)
			}
		default:
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s: error %v, want %v", tt.name, err, tt.wantErr)
			}
		}
		if got == product.Unchanged && p != tt.from {
			t.Errorf("%s: product modified: %+v", tt.name, p)
		}
		if got != product.Unchanged && (p.Version != tt.from.Version+1 || !p.UpdatedAt.Equal(later)) {
			t.Errorf("%s: version %d, updated %v", tt.name, p.Version, p.UpdatedAt)
		}
	}
}
