// Package shipment is the domain of logistics.shipments: the delivery of a confirmed order.
//
// Rules:
//   - A confirmed order gets one shipment, scheduled to the order's shipping address, unless the
//     order was cancelled first.
//   - Through the API a shipment moves scheduled -> dispatched -> delivered, one step at a time.
//     Asking for the status it already has changes nothing; any other move is illegal.
//   - A cancelled order cancels its shipment while it is scheduled; once dispatched it goes on.
//
// The package has no transport or storage imports.
package shipment

import (
	"errors"
	"fmt"
	"time"
)

// Errors of the domain; the HTTP layer maps them to statuses in one place.
var (
	ErrNotFound          = errors.New("not found")                 // no such shipment
	ErrIllegalTransition = errors.New("illegal status transition") // 409
	ErrVersionMismatch   = errors.New("version mismatch")          // 412: the client's copy is stale
	ErrInvalid           = errors.New("invalid")                   // an input breaks a rule
)

// MaxIDLength is the longest order id stored.
const MaxIDLength = 100

// Status of a shipment.
type Status string

// Shipment statuses.
const (
	Scheduled  Status = "scheduled"
	Dispatched Status = "dispatched"
	Delivered  Status = "delivered"
	Cancelled  Status = "cancelled"
)

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	switch s {
	case Scheduled, Dispatched, Delivered, Cancelled:
		return true
	}
	return false
}

// Address is where a shipment goes.
type Address struct {
	Name       string
	Line1      string
	Line2      string
	PostalCode string
	City       string
	Country    string
}

// IsZero reports whether no address is known.
func (a Address) IsZero() bool { return a == Address{} }

// Shipment is the delivery of one order.
type Shipment struct {
	ID           string
	OrderID      string
	Status       Status
	Address      Address
	Version      int64 // grows by one with every change
	ScheduledAt  time.Time
	DispatchedAt *time.Time
	DeliveredAt  *time.Time
	CancelledAt  *time.Time
}

// Schedule returns the new shipment id of a confirmed order.
func Schedule(id, orderID string, to Address, now time.Time) Shipment {
	return Shipment{ID: id, OrderID: orderID, Status: Scheduled, Address: to, Version: 1, ScheduledAt: now}
}

// Transition moves s to status to at now, as asked through the API. changed is false when s already
// has that status. It fails with ErrInvalid for an unknown status and with ErrIllegalTransition for
// any move but scheduled -> dispatched and dispatched -> delivered.
func (s Shipment) Transition(to Status, now time.Time) (next Shipment, changed bool, err error) {
	if !to.Valid() {
		return s, false, fmt.Errorf("%w: status %q", ErrInvalid, to)
	}
	if to == s.Status {
		return s, false, nil
	}
	switch {
	case s.Status == Scheduled && to == Dispatched:
		s.DispatchedAt = &now
	case s.Status == Dispatched && to == Delivered:
		s.DeliveredAt = &now
	default:
		return s, false, fmt.Errorf("%w: a %s shipment cannot become %s", ErrIllegalTransition, s.Status, to)
	}
	s.Status = to
	s.Version++
	return s, true, nil
}

// Cancel returns s cancelled at now because its order was cancelled. ok is false, and s unchanged,
// unless s is scheduled.
func (s Shipment) Cancel(now time.Time) (next Shipment, ok bool) {
	if s.Status != Scheduled {
		return s, false
	}
	s.Status, s.CancelledAt = Cancelled, &now
	s.Version++
	return s, true
}

// Filter selects shipments; zero fields select all.
type Filter struct {
	OrderID string
	Status  Status
	// Customer, when set, keeps only the shipments of that customer's
	// orders (a customer's view: set from the token, never from the query).
	Customer *string
}

// ValidID reports whether id can name an order: 1..MaxIDLength bytes.
func ValidID(id string) bool { return id != "" && len(id) <= MaxIDLength }
