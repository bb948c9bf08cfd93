// Package product is the domain of catalog.products: a product of the
// catalog, the rules for adding, changing and retiring one, and the Store the
// use cases need. It imports no transport or database package.
package product

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sagittarius-a/sagittarius/internal/validation"
)

// Status of a product. Only an active product may be ordered.
type Status string

// Product statuses. Retired is final.
const (
	StatusActive  Status = "active"
	StatusRetired Status = "retired"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s == StatusActive || s == StatusRetired }

// Currency is the only currency of the shop.
const Currency = "EUR"

// Limits of the fields.
const (
	MaxNameLen        = 200
	MaxDescriptionLen = 2000
	MaxAmount         = 100_000_000_00 // one hundred million euros, in cents
)

// Errors of the use cases. The HTTP layer maps them in one place.
var (
	// ErrNotFound: no product with this id.
	ErrNotFound = errors.New("product not found")
	// ErrSKUTaken: another product already has this SKU.
	ErrSKUTaken = errors.New("sku already in the catalog")
	// ErrRetired: the product is retired and can no longer change.
	ErrRetired = errors.New("product is retired")
	// ErrStale: the caller's precondition (If-Match) does not match the
	// product's current version.
	ErrStale = errors.New("product version does not match")
)

// FieldError names one invalid field (by its JSON pointer without the
// leading slash) and why.
type FieldError = validation.FieldError

// ValidationError lists the invalid fields of a request.
type ValidationError = validation.Error

// Money is an amount in minor units (cents) of a currency.
type Money struct {
	Amount   int64
	Currency string
}

// Product is an article of the catalog.
type Product struct {
	ID          string
	SKU         string // upper case, unique, never changes
	Name        string
	Description string
	Price       Money
	Status      Status
	Version     int64 // 1 when added, +1 per change
	AddedAt     time.Time
	UpdatedAt   time.Time
}

var skuRE = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{0,63}$`)

// NormalizeSKU trims and upper-cases sku.
func NormalizeSKU(sku string) string { return strings.ToUpper(strings.TrimSpace(sku)) }

func checkText(f *validation.Fields, field, s string, required bool, max int) {
	switch {
	case s == "" && required:
		f.Add(field, "is required")
	case !utf8.ValidString(s):
		f.Add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(s) > max:
		f.Add(field, fmt.Sprintf("must be at most %d characters", max))
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) >= 0:
		f.Add(field, "must not contain control characters")
	}
}

func checkPrice(f *validation.Fields, m Money) {
	if m.Amount <= 0 || m.Amount > MaxAmount {
		f.Add("price/amount", fmt.Sprintf("must be an integer number of cents from 1 to %d", int64(MaxAmount)))
	}
	if m.Currency != Currency {
		f.Add("price/currency", "must be EUR, the currency of the shop")
	}
}

// Add returns a new active product with version 1, or a *ValidationError.
// The SKU is upper-cased, texts are trimmed.
func Add(id, sku, name, description string, price Money, now time.Time) (Product, error) {
	p := Product{
		ID: id, SKU: NormalizeSKU(sku), Name: strings.TrimSpace(name), Description: strings.TrimSpace(description),
		Price: price, Status: StatusActive, Version: 1, AddedAt: now.UTC(), UpdatedAt: now.UTC(),
	}
	f := validation.Fields{Subject: "product"}
	if !skuRE.MatchString(p.SKU) {
		f.Add("sku", "must be 1 to 64 letters, digits or dashes, starting with a letter or digit")
	}
	checkText(&f, "name", p.Name, true, MaxNameLen)
	checkText(&f, "description", p.Description, false, MaxDescriptionLen)
	checkPrice(&f, p.Price)
	return p, f.Err()
}

// Change is a partial update; nil fields stay as they are. Status may only
// become StatusRetired.
type Change struct {
	Name        *string
	Description *string
	Price       *Money
	Status      *Status
}

// Outcome says what Apply did.
type Outcome int

// Outcomes of Apply.
const (
	Unchanged Outcome = iota // nothing to store, no event
	Updated                  // details or price changed: product_updated
	Retired                  // the product was retired (perhaps with other changes): product_retired
)

// Apply applies ch to p. It returns what happened; on a change Version grows
// by one and UpdatedAt is now. A retired product refuses any real change with
// ErrRetired (re-retiring it is Unchanged). Invalid values give a
// *ValidationError. On error p is left as it was.
func (p *Product) Apply(ch Change, now time.Time) (Outcome, error) {
	next := *p
	f := validation.Fields{Subject: "product"}
	if ch.Name != nil {
		next.Name = strings.TrimSpace(*ch.Name)
		checkText(&f, "name", next.Name, true, MaxNameLen)
	}
	if ch.Description != nil {
		next.Description = strings.TrimSpace(*ch.Description)
		checkText(&f, "description", next.Description, false, MaxDescriptionLen)
	}
	if ch.Price != nil {
		next.Price = *ch.Price
		checkPrice(&f, next.Price)
	}
	if ch.Status != nil {
		next.Status = *ch.Status
		if !next.Status.Valid() {
			f.Add("status", "must be active or retired")
		}
	}
	if err := f.Err(); err != nil {
		return Unchanged, err
	}
	if next == *p {
		return Unchanged, nil
	}
	if p.Status == StatusRetired {
		return Unchanged, ErrRetired
	}
	out := Updated
	if next.Status == StatusRetired {
		out = Retired
	}
	next.Version++
	next.UpdatedAt = now.UTC()
	*p = next
	return out, nil
}

// Filter selects products to list. Zero fields do not filter.
type Filter struct {
	Status Status
	SKU    string // exact, normalised
	Limit  int
	Offset int
}

// Store keeps products. Each method is one transaction; the event a change
// causes is written to the outbox in that same transaction. Implementations
// are safe for concurrent use.
type Store interface {
	// Create stores a new product, or returns ErrSKUTaken.
	Create(ctx context.Context, p Product) error
	// Get returns the product or ErrNotFound.
	Get(ctx context.Context, id string) (Product, error)
	// Update loads the product, calls change (which may abort with an error,
	// e.g. ErrStale, ErrRetired or a *ValidationError, and says what it did)
	// and stores the result with its event. It returns the product as stored
	// or ErrNotFound.
	Update(ctx context.Context, id string, change func(p *Product) (Outcome, error)) (Product, error)
	// List returns one page of products matching f, oldest first, and the
	// number of all matching products.
	List(ctx context.Context, f Filter) ([]Product, int, error)
}

// ValidSKU reports whether sku (already normalised) is a valid SKU.
func ValidSKU(sku string) bool { return skuRE.MatchString(sku) }
