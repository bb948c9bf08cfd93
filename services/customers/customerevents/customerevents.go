// Package customerevents defines the integration events that crm.customers
// publishes. It is the only package of the customers service that other
// services may import.
//
// Each event carries the customer in the same shape as the REST model of
// /v1/customers/{id}, HAL links included; links are absolute and point at the
// gateway (for example http://127.0.0.1:8080/customers/v1/customers/{id}).
//
// Events (all with entity key "customer"):
//
//	crm.customers.customer_registered  a new customer, status "active"
//	crm.customers.customer_updated     name, email or status changed (Version grew)
//	crm.customers.customer_removed     the customer was removed, status "removed"; it is gone from the API
//
// Consumers keep the highest Version they have seen per customer and ignore
// older events: events may arrive late, twice or out of order.
package customerevents

import (
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// Service is the publishing service: its queue name and the app_id of its messages.
const Service = "crm.customers"

// Customer statuses. Only an active customer may place orders.
const (
	StatusActive    = "active"    // may place orders
	StatusSuspended = "suspended" // known, but may not place orders
	StatusRemoved   = "removed"   // deleted; only ever seen in customer_removed
)

// Customer is a registered customer: the REST model of /v1/customers/{id}.
//
// Links: self, orders (the customer's orders in the orders service),
// notifications (the e-mails sent to the customer, in the notifications service).
type Customer struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	// Status is StatusActive, StatusSuspended or (in customer_removed) StatusRemoved.
	Status string `json:"status"`
	// Version grows by one with every change; the HTTP ETag is derived from it.
	Version      int64     `json:"version"`
	RegisteredAt time.Time `json:"registered_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	Links        hal.Links `json:"_links" links:"self,orders,notifications"`
}

// The events of crm.customers.
var (
	CustomerRegistered = eventbus.MustEventType[Customer](Service, "customer_registered", "customer")
	CustomerUpdated    = eventbus.MustEventType[Customer](Service, "customer_updated", "customer")
	CustomerRemoved    = eventbus.MustEventType[Customer](Service, "customer_removed", "customer")
)

// All lists every event type of crm.customers, for Bus.Publishes and contracts.
var All = []eventbus.EventInfoer{CustomerRegistered, CustomerUpdated, CustomerRemoved}
