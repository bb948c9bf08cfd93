// Package order is the domain of sales.orders: an Order, the statuses it moves
// through as the saga progresses, and the rules for placing and cancelling one.
//
// It has no transport or storage imports. The mysql package persists orders
// and publishes their events; the httpapi package exposes them over HTTP.
package order

import (
	"errors"
	"fmt"
	"time"
)

// Status is where an order stands in the saga.
type Status string

// The statuses of an order. An order starts pending, becomes confirmed once
// its payment is captured, then shipped and delivered as its shipment moves;
// it becomes cancelled when stock or payment fail, or when the customer
// cancels it before dispatch.
const (
	StatusPending   Status = "pending"
	StatusConfirmed Status = "confirmed"
	StatusCancelled Status = "cancelled"
	StatusShipped   Status = "shipped"
	StatusDelivered Status = "delivered"
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{StatusPending, StatusConfirmed, StatusShipped, StatusDelivered, StatusCancelled}

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// next lists, for each status, the statuses an order may move to.
// confirmed -> delivered is allowed because shipment_delivered may be handled
// before shipment_dispatched when both arrive close together.
var next = map[Status][]Status{
	StatusPending:   {StatusConfirmed, StatusCancelled},
	StatusConfirmed: {StatusShipped, StatusDelivered, StatusCancelled},
	StatusShipped:   {StatusDelivered},
}

// CanBecome reports whether an order in status s may move to status t.
func (s Status) CanBecome(t Status) bool {
	for _, v := range next[s] {
		if v == t {
			return true
		}
	}
	return false
}

// Reason says why an order was cancelled.
type Reason string

// Cancellation reasons.
const (
	ReasonOutOfStock        Reason = "out_of_stock"       // inventory rejected the reservation
	ReasonPaymentDeclined   Reason = "payment_declined"   // payments declined the charge
	ReasonCustomerRequested Reason = "customer_requested" // the customer cancelled through the API
)

// Money is an amount in minor units (cents) of a currency (ISO 4217).
type Money struct {
	Amount   int64
	Currency string
}

// Line is one product of an order, priced when the order was placed.
type Line struct {
	ProductID   string
	ProductName string
	Quantity    int
	UnitPrice   Money
}

// Total is the quantity times the unit price.
func (l Line) Total() Money {
	return Money{Amount: l.UnitPrice.Amount * int64(l.Quantity), Currency: l.UnitPrice.Currency}
}

// Address is where an order is shipped to.
type Address struct {
	Name       string
	Line1      string
	Line2      string
	PostalCode string
	City       string
	Country    string // ISO 3166-1 alpha-2, upper case
}

// Order is a customer's order. Version starts at 1 and grows by one with
// every change; it is the ETag of the order's REST resource.
type Order struct {
	ID                 string
	CustomerID         string
	Lines              []Line
	Total              Money
	PaymentMethodID    string
	ShippingAddress    Address
	Status             Status
	CancellationReason Reason // set once cancelled
	PaymentID          string // set once payments captured or declined the charge
	ShipmentID         string // set once shipping scheduled the shipment
	Version            int
	PlacedAt           time.Time
	UpdatedAt          time.Time
}

// Filter selects orders when listing them. Zero fields do not filter.
type Filter struct {
	CustomerID string
	Status     Status
	Limit      int // page size; 0 means 20
	Offset     int
}

// Errors of the domain. Callers test them with errors.Is.
var (
	// ErrNotFound: no order with that id.
	ErrNotFound = errors.New("order not found")
	// ErrNotCancellable: the order is already cancelled, shipped or delivered.
	ErrNotCancellable = errors.New("order can no longer be cancelled")
	// ErrVersionMismatch: the caller's version (If-Match) is not the current one.
	ErrVersionMismatch = errors.New("order was changed by someone else")
	// ErrKeyReused: an Idempotency-Key was reused for a different request.
	ErrKeyReused = errors.New("idempotency key already used for a different request")
)

// change moves o to status t, bumping its version.
func (o *Order) change(t Status, now time.Time) {
	o.Status = t
	o.Version++
	o.UpdatedAt = now.UTC()
}

// Cancel cancels the order for reason. It returns an error wrapping
// ErrNotCancellable when the order is already cancelled, shipped or delivered.
// Customers cancel with ReasonCustomerRequested; a confirmed order may be
// cancelled (payments then refunds it).
func (o *Order) Cancel(reason Reason, now time.Time) error {
	if !o.Status.CanBecome(StatusCancelled) {
		return fmt.Errorf("order %s is %s: %w", o.ID, o.Status, ErrNotCancellable)
	}
	o.CancellationReason = reason
	o.change(StatusCancelled, now)
	return nil
}

// attach sets *field to id when it is still empty and reports whether it did.
func attach(field *string, id string) bool {
	if *field != "" || id == "" {
		return false
	}
	*field = id
	return true
}

// settle finishes a saga step: it moves o to status to when move is true,
// and bumps the version once if anything changed. It reports whether the
// status changed.
func (o *Order) settle(move bool, to Status, attached bool, now time.Time) bool {
	switch {
	case move:
		o.change(to, now)
	case attached:
		o.Version++
		o.UpdatedAt = now.UTC()
	}
	return move
}

// The methods below apply what the saga reports. Each reports whether the
// status changed (then the store publishes an event); any change, status or
// a newly learned payment or shipment id, also bumps Version by one (then
// the store saves the order). None fails: an event that no longer applies,
// because it arrived late or twice, changes nothing.

// Reject cancels a pending order because the saga failed (out of stock,
// payment declined). An order that is no longer pending (already cancelled
// by its customer, say) keeps its status. paymentID may be empty.
func (o *Order) Reject(reason Reason, paymentID string, now time.Time) bool {
	attached := attach(&o.PaymentID, paymentID)
	move := o.Status == StatusPending
	if move {
		o.CancellationReason = reason
	}
	return o.settle(move, StatusCancelled, attached, now)
}

// Confirm records a captured payment: pending becomes confirmed. A capture
// for an order that was cancelled in the meantime does not revive it
// (payments refunds cancelled orders on order_cancelled).
func (o *Order) Confirm(paymentID string, now time.Time) bool {
	attached := attach(&o.PaymentID, paymentID)
	return o.settle(o.Status == StatusPending, StatusConfirmed, attached, now)
}

// AttachShipment records the id of the order's scheduled shipment; the
// status stays. It always reports false (no status change).
func (o *Order) AttachShipment(shipmentID string, now time.Time) bool {
	attached := attach(&o.ShipmentID, shipmentID)
	return o.settle(false, o.Status, attached, now)
}

// Ship records a dispatched shipment: confirmed becomes shipped. A late
// dispatch for a delivered order changes nothing.
func (o *Order) Ship(shipmentID string, now time.Time) bool {
	attached := attach(&o.ShipmentID, shipmentID)
	return o.settle(o.Status.CanBecome(StatusShipped), StatusShipped, attached, now)
}

// Deliver records a delivered shipment: confirmed or shipped becomes
// delivered.
func (o *Order) Deliver(shipmentID string, now time.Time) bool {
	attached := attach(&o.ShipmentID, shipmentID)
	return o.settle(o.Status.CanBecome(StatusDelivered), StatusDelivered, attached, now)
}

// CustomerFact is what one customer event says about a customer, for the
// read model placements are checked against.
type CustomerFact struct {
	ID      string
	Active  bool
	Removed bool // customer_removed: the customer can never order again
	Version int64
	FiredAt time.Time
}

// ProductFact is what one product event says about a product, for the read
// model placements are checked against.
type ProductFact struct {
	ID      string
	Name    string
	Active  bool
	Retired bool   // product_retired: the product can never be ordered again
	Price   *Money // nil when unpriced
	Version int64
	FiredAt time.Time
}
