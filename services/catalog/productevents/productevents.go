// Package productevents defines the integration events that catalog.products
// publishes. It is the only package of the catalog service that other
// services may import.
//
// Each event carries the product in the same shape as the REST model of
// /v1/products/{id}, HAL links included; links are absolute and point at the
// gateway (for example http://127.0.0.1:8080/catalog/v1/products/{id}).
//
// Events (all with entity key "product"):
//
//	catalog.products.product_added    a new product, status "active", with its price
//	catalog.products.product_updated  name, description or price changed (Version grew)
//	catalog.products.product_retired  the product may no longer be ordered, status "retired"
//
// Consumers keep the highest Version they have seen per product and ignore
// older events: events may arrive late, twice or out of order.
package productevents

import (
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// Service is the publishing service: its queue name and the app_id of its messages.
const Service = "catalog.products"

// Product statuses. Only an active product may be ordered.
const (
	StatusActive  = "active"
	StatusRetired = "retired" // final: a retired product never comes back
)

// Money is an amount in minor units (cents) of an ISO 4217 currency.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Product is an article of the catalog: the REST model of /v1/products/{id}.
//
// Links: self, stock-item (its stock in the inventory service).
type Product struct {
	ID string `json:"id"`
	// SKU is the merchant's unique article code (upper case letters, digits, dashes).
	SKU         string `json:"sku"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Price       Money  `json:"price"`
	// Status is StatusActive or StatusRetired.
	Status string `json:"status"`
	// Version grows by one with every change; the HTTP ETag is derived from it.
	Version   int64     `json:"version"`
	AddedAt   time.Time `json:"added_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Links     hal.Links `json:"_links" links:"self,stock-item"`
}

// The events of catalog.products.
var (
	ProductAdded   = eventbus.MustEventType[Product](Service, "product_added", "product")
	ProductUpdated = eventbus.MustEventType[Product](Service, "product_updated", "product")
	ProductRetired = eventbus.MustEventType[Product](Service, "product_retired", "product")
)

// All lists every event type of catalog.products, for Bus.Publishes and contracts.
var All = []eventbus.EventInfoer{ProductAdded, ProductUpdated, ProductRetired}
