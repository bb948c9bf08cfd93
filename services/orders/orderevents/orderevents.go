// Package orderevents defines the integration events that sales.orders publishes.
//
// It is the only package of the orders service that other services may import.
// Each event carries the order in the same shape as the REST model of
// /v1/orders/{id}, HAL links included; links are absolute and point at the
// gateway (for example http://127.0.0.1:8080/orders/v1/orders/{id}).
//
// Events (all with entity key "order"):
//
//	sales.orders.order_placed     status "pending": customer, lines with unit prices, total, payment_method_id, shipping_address
//	sales.orders.order_confirmed  status "confirmed": the payment was captured (payment_id set)
//	sales.orders.order_cancelled  status "cancelled", with cancellation_reason (out_of_stock, payment_declined, customer_requested)
//	sales.orders.order_shipped    status "shipped": the shipment was dispatched (shipment_id set)
//	sales.orders.order_delivered  status "delivered"
//
// They are published (through the outbox) by services/orders/mysql, in store.go.
package orderevents

import (
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// Service is the publishing service: its queue name and the app_id of its messages.
const Service = "sales.orders"

// Order statuses.
const (
	StatusPending   = "pending"   // placed; stock and payment not settled yet
	StatusConfirmed = "confirmed" // stock reserved and payment captured
	StatusCancelled = "cancelled" // see CancellationReason
	StatusShipped   = "shipped"   // the shipment was dispatched
	StatusDelivered = "delivered" // the shipment was delivered
)

// Cancellation reasons.
const (
	ReasonOutOfStock        = "out_of_stock"       // inventory rejected the reservation
	ReasonPaymentDeclined   = "payment_declined"   // payments declined the charge
	ReasonCustomerRequested = "customer_requested" // the customer cancelled through the API
)

// Money is an amount in minor units (cents) of an ISO 4217 currency.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Address is where an order is shipped.
type Address struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	PostalCode string `json:"postal_code"`
	City       string `json:"city"`
	// Country is an ISO 3166-1 alpha-2 code, upper case.
	Country string `json:"country"`
}

// Line is one product of an order, priced when the order was placed.
// Links: product (catalog).
type Line struct {
	ProductID   string    `json:"product_id"`
	ProductName string    `json:"product_name,omitempty"`
	Quantity    int64     `json:"quantity"`
	UnitPrice   Money     `json:"unit_price"`
	Total       Money     `json:"total"`
	Links       hal.Links `json:"_links,omitempty" links:"product"`
}

// Order is a customer's order: the REST model of /v1/orders/{id}.
//
// Links: self, customer (customers service), products (a list, catalog),
// reservation (inventory), payment (payments, once known), shipment
// (shipping, once known).
type Order struct {
	ID         string `json:"id"`
	CustomerID string `json:"customer_id"`
	// Status is one of StatusPending, StatusConfirmed, StatusCancelled, StatusShipped, StatusDelivered.
	Status string `json:"status"`
	// CancellationReason is set when Status is StatusCancelled: one of the Reason constants.
	CancellationReason string `json:"cancellation_reason,omitempty"`
	Lines              []Line `json:"lines"`
	Total              Money  `json:"total"`
	// PaymentMethodID is the payment method the order is paid with: its id
	// in finance.payments (POST /payments/v1/payment-methods). The raw
	// payment token never leaves payments.
	PaymentMethodID string  `json:"payment_method_id"`
	ShippingAddress Address `json:"shipping_address"`
	// PaymentID is the id of the payment (payments service), once captured or declined.
	PaymentID string `json:"payment_id,omitempty"`
	// ShipmentID is the id of the shipment (shipping service), once scheduled.
	ShipmentID string `json:"shipment_id,omitempty"`
	// Version grows by one with every change; the HTTP ETag is derived from it.
	Version   int64     `json:"version"`
	PlacedAt  time.Time `json:"placed_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Links     hal.Links `json:"_links" links:"self,collection,customer,products,reservation,payment?,shipment?"`
}

// The events of sales.orders.
var (
	OrderPlaced    = eventbus.MustEventType[Order](Service, "order_placed", "order")
	OrderConfirmed = eventbus.MustEventType[Order](Service, "order_confirmed", "order")
	OrderCancelled = eventbus.MustEventType[Order](Service, "order_cancelled", "order")
	OrderShipped   = eventbus.MustEventType[Order](Service, "order_shipped", "order")
	OrderDelivered = eventbus.MustEventType[Order](Service, "order_delivered", "order")
)

// All lists every event type of sales.orders, for Bus.Publishes and contracts.
var All = []eventbus.EventInfoer{OrderPlaced, OrderConfirmed, OrderCancelled, OrderShipped, OrderDelivered}
