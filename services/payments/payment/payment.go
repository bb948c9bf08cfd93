// Package payment is the domain of finance.payments: the charge of an order whose stock is reserved,
// and its refund when the order is cancelled after capture.
//
// Rules:
//   - An order is charged once, when both its order_placed (amount, payment token) and its
//     stock_reserved have been seen, in any order, and only if it has not been cancelled.
//   - A charge is captured or declined by the payment provider (see Provider).
//   - A captured payment is refunded exactly once, when its order is cancelled. A declined payment
//     has nothing to refund.
//
// The package has no transport or storage imports.
package payment

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors of the domain.
var (
	ErrNotFound = errors.New("not found") // no such payment
	ErrInvalid  = errors.New("invalid")   // an input breaks a rule
)

// MaxIDLength is the longest order id stored.
const MaxIDLength = 100

// Status of a payment.
type Status string

// Payment statuses: captured -> refunded; declined is final.
const (
	Captured Status = "captured"
	Declined Status = "declined"
	Refunded Status = "refunded"
)

// Money is an amount in minor units of a currency (ISO 4217 code).
type Money struct {
	Amount   int64
	Currency string
}

// Order is what payments knows of an order: the read model fed by orders' and inventory's events.
type Order struct {
	ID            string
	CustomerID    string // the customer who placed it (order_placed); "" until then
	Total         Money
	PaymentToken  string
	Placed        bool // order_placed seen: Total and PaymentToken are known
	StockReserved bool // stock_reserved seen
	Cancelled     bool // order_cancelled seen
}

// Payment is the charge of one order (at most one per order).
type Payment struct {
	ID                string
	OrderID           string
	Amount            Money
	Status            Status
	Reason            string // why declined
	ProviderReference string
	RefundReference   string
	Version           int64
	CreatedAt         time.Time
	CapturedAt        *time.Time
	DeclinedAt        *time.Time
	RefundedAt        *time.Time
}

// ChargeDue reports whether o must be charged now: placed, stock reserved, not cancelled, and not
// charged yet (existing is nil).
func ChargeDue(o Order, existing *Payment) bool {
	return existing == nil && o.Placed && o.StockReserved && !o.Cancelled
}

// RefundDue reports whether p must be refunded because its order was cancelled: only a captured
// payment is, and only once.
func RefundDue(p *Payment) bool { return p != nil && p.Status == Captured }

// ChargeRequest asks a provider to capture an amount.
type ChargeRequest struct {
	OrderID string // also the idempotency key: the same order is never captured twice
	Token   string
	Amount  Money
}

// ChargeResult is a provider's answer to a charge.
type ChargeResult struct {
	Captured  bool
	Reason    string // when declined, e.g. "card_declined"
	Reference string // the provider's id of the capture or of the declined attempt
}

// Provider is a payment service provider. Implementations must be idempotent per order id (a
// retried charge or refund returns the first answer) and safe for concurrent use.
type Provider interface {
	// Charge captures req.Amount with req.Token, or declines it. An error means the provider could not
	// be asked (retry later), not a decline.
	Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error)
	// Refund gives back the captured amount of captureReference and returns the refund's reference.
	Refund(ctx context.Context, captureReference string, amount Money) (string, error)
}

// Charge asks provider to charge o (for which ChargeDue holds) and returns the resulting payment,
// captured or declined, with id newID created at now.
func Charge(ctx context.Context, provider Provider, o Order, newID string, now time.Time) (Payment, error) {
	res, err := provider.Charge(ctx, ChargeRequest{OrderID: o.ID, Token: o.PaymentToken, Amount: o.Total})
	if err != nil {
		return Payment{}, fmt.Errorf("charge order %s: %w", o.ID, err)
	}
	p := Payment{ID: newID, OrderID: o.ID, Amount: o.Total, ProviderReference: res.Reference, Version: 1, CreatedAt: now}
	if res.Captured {
		p.Status, p.CapturedAt = Captured, &now
	} else {
		p.Status, p.Reason, p.DeclinedAt = Declined, res.Reason, &now
	}
	return p, nil
}

// Refund asks provider to refund p (for which RefundDue holds) and returns p refunded at now.
func Refund(ctx context.Context, provider Provider, p Payment, now time.Time) (Payment, error) {
	if !RefundDue(&p) {
		return p, fmt.Errorf("%w: payment %s is %s, only a captured payment can be refunded", ErrInvalid, p.ID, p.Status)
	}
	ref, err := provider.Refund(ctx, p.ProviderReference, p.Amount)
	if err != nil {
		return p, fmt.Errorf("refund payment %s: %w", p.ID, err)
	}
	p.Status, p.RefundReference, p.RefundedAt = Refunded, ref, &now
	p.Version++
	return p, nil
}

// Filter selects payments; zero fields select all.
type Filter struct {
	OrderID string
	Status  Status
	// Customer, when set, keeps only the payments of that customer's
	// orders (a customer's view: set from the token, never from the query).
	Customer *string
}

// ValidID reports whether id can name an order: 1..MaxIDLength bytes.
func ValidID(id string) bool { return id != "" && len(id) <= MaxIDLength }
