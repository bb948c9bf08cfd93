// Package paymentevents defines the integration events that finance.payments publishes.
//
// It is the only package of the payments service that other services may import. Each event
// carries its entity in the same shape as the REST model of /v1/payments/{id}, HAL links included;
// links are absolute and point at the gateway.
//
// Events:
//
//	finance.payments.payment_captured {"payment": Payment} status "captured"
//	finance.payments.payment_declined {"payment": Payment} status "declined", with Reason
//	finance.payments.payment_refunded {"payment": Payment} status "refunded", with RefundedAt
package paymentevents

import (
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// Service is the publishing service: its queue name and the app_id of its messages.
const Service = "finance.payments"

// Payment statuses.
const (
	StatusCaptured = "captured" // the provider captured the amount
	StatusDeclined = "declined" // the provider declined; see Reason
	StatusRefunded = "refunded" // captured, then refunded after the order was cancelled
)

// ReasonCardDeclined is the decline reason of the simulated provider (payment_token "tok_decline").
const ReasonCardDeclined = "card_declined"

// Money is an amount in minor units (cents) of an ISO 4217 currency.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Payment is the charge of one order: the REST model of /v1/payments/{id}.
// Links: self, order (orders service), reservation (inventory).
type Payment struct {
	ID      string `json:"id"`
	OrderID string `json:"order_id"`
	Amount  Money  `json:"amount"`
	// Status is one of StatusCaptured, StatusDeclined, StatusRefunded.
	Status string `json:"status"`
	// Reason is set when declined, e.g. ReasonCardDeclined.
	Reason string `json:"reason,omitempty"`
	// ProviderReference is the provider's id of the capture (or of the declined attempt).
	ProviderReference string `json:"provider_reference,omitempty"`
	// RefundReference is the provider's id of the refund, once refunded.
	RefundReference string     `json:"refund_reference,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	CapturedAt      *time.Time `json:"captured_at,omitempty"`
	DeclinedAt      *time.Time `json:"declined_at,omitempty"`
	RefundedAt      *time.Time `json:"refunded_at,omitempty"`
	Links           hal.Links  `json:"_links" links:"self,order,reservation"`
}

// The events of finance.payments.
var (
	PaymentCaptured = eventbus.MustEventType[Payment](Service, "payment_captured", "payment")
	PaymentDeclined = eventbus.MustEventType[Payment](Service, "payment_declined", "payment")
	PaymentRefunded = eventbus.MustEventType[Payment](Service, "payment_refunded", "payment")
)

// All lists every event type of finance.payments, for Bus.Publishes and contracts.
var All = []eventbus.EventInfoer{PaymentCaptured, PaymentDeclined, PaymentRefunded}
