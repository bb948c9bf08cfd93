// Package customer is the domain of crm.customers: a customer, the rules for
// registering and changing one, and the Store the use cases need. It imports
// no transport or database package.
package customer

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/validation"
)

// Status of a customer. Only an active customer may place orders.
type Status string

// Statuses a customer can have while it exists.
const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
)

// Valid reports whether s is a status a customer may have.
func (s Status) Valid() bool { return s == StatusActive || s == StatusSuspended }

// Errors of the use cases. The HTTP layer maps them in one place.
var (
	// ErrNotFound: no customer with this id (or it was removed).
	ErrNotFound = errors.New("customer not found")
	// ErrEmailTaken: another customer already has this email.
	ErrEmailTaken = errors.New("email already registered")
	// ErrStale: the caller's precondition (If-Match) does not match the
	// customer's current version.
	ErrStale = errors.New("customer version does not match")
)

// FieldError names one invalid field (by its JSON pointer without the
// leading slash) and why.
type FieldError = validation.FieldError

// ValidationError lists the invalid fields of a request.
type ValidationError = validation.Error

// Customer is a registered customer.
type Customer struct {
	ID           string
	Email        string // normalised: trimmed, lower case
	Name         string
	Status       Status
	Version      int64 // 1 at registration, +1 per change
	RegisteredAt time.Time
	UpdatedAt    time.Time
}

// Limits of the fields.
const (
	MaxEmailLen = 254
	MaxNameLen  = 200
)

// NormalizeEmail trims and lower-cases email.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Register returns a new active customer with version 1, or a
// *ValidationError. email is normalised, name trimmed.
func Register(id, email, name string, now time.Time) (Customer, error) {
	c := Customer{
		ID:           id,
		Email:        NormalizeEmail(email),
		Name:         strings.TrimSpace(name),
		Status:       StatusActive,
		Version:      1,
		RegisteredAt: now.UTC(),
		UpdatedAt:    now.UTC(),
	}
	f := validation.Fields{Subject: "customer"}
	validation.Email(&f, "email", c.Email, MaxEmailLen)
	validation.Name(&f, "name", c.Name, MaxNameLen)
	return c, f.Err()
}

// Change is a partial update; nil fields stay as they are.
type Change struct {
	Email  *string
	Name   *string
	Status *Status
}

// Apply applies ch to c. It returns whether anything changed (then Version
// grew by one and UpdatedAt is now), or a *ValidationError leaving c as it was.
func (c *Customer) Apply(ch Change, now time.Time) (bool, error) {
	next := *c
	f := validation.Fields{Subject: "customer"}
	if ch.Email != nil {
		next.Email = NormalizeEmail(*ch.Email)
		validation.Email(&f, "email", next.Email, MaxEmailLen)
	}
	if ch.Name != nil {
		next.Name = strings.TrimSpace(*ch.Name)
		validation.Name(&f, "name", next.Name, MaxNameLen)
	}
	if ch.Status != nil {
		next.Status = *ch.Status
		if !next.Status.Valid() {
			f.Add("status", "must be active or suspended (remove a customer with DELETE)")
		}
	}
	if err := f.Err(); err != nil {
		return false, err
	}
	if next.Email == c.Email && next.Name == c.Name && next.Status == c.Status {
		return false, nil
	}
	next.Version++
	next.UpdatedAt = now.UTC()
	*c = next
	return true, nil
}

// Filter selects customers to list. Zero fields do not filter.
type Filter struct {
	Email  string // exact, normalised
	Status Status
	Limit  int
	Offset int
}

// Store keeps customers. Each method is one transaction; the events a change
// causes are written to the outbox in that same transaction. Implementations
// are safe for concurrent use.
type Store interface {
	// Create stores a new customer, or returns ErrEmailTaken.
	Create(ctx context.Context, c Customer) error
	// Get returns the customer or ErrNotFound.
	Get(ctx context.Context, id string) (Customer, error)
	// Update loads the customer, calls change (which may return an error to
	// abort, e.g. ErrStale or a *ValidationError, and reports whether it
	// changed anything) and stores the result. It returns the customer as
	// stored, ErrNotFound, or ErrEmailTaken.
	Update(ctx context.Context, id string, change func(c *Customer) (bool, error)) (Customer, error)
	// Remove deletes the customer after check (which may abort with an error)
	// approved it. It returns the removed customer or ErrNotFound.
	Remove(ctx context.Context, id string, check func(c Customer) error) (Customer, error)
	// List returns one page of customers matching f, oldest first, and the
	// number of all matching customers.
	List(ctx context.Context, f Filter) ([]Customer, int, error)
}
