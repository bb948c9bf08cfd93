package httpapi

import (
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/services/orders/order"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

// Renderer turns orders into their REST model with absolute HAL links that
// point at the gateway, where each service's API is mounted under its
// directory name (/orders, /customers, /catalog, /inventory, /payments,
// /shipping). It is an immutable value, safe for concurrent use.
type Renderer struct {
	orders, customers, catalog, inventory, payments, shipping hal.Base
}

// NewRenderer returns the Renderer for the gateway at base (PUBLIC_BASE_URL).
func NewRenderer(base hal.Base) Renderer {
	return Renderer{
		orders:    base.Join("orders", "v1"),
		customers: base.Join("customers", "v1"),
		catalog:   base.Join("catalog", "v1"),
		inventory: base.Join("inventory", "v1"),
		payments:  base.Join("payments", "v1"),
		shipping:  base.Join("shipping", "v1"),
	}
}

// OrderHref returns the absolute URL of order id.
func (r Renderer) OrderHref(id string) string { return r.orders.Href("orders", id) }

// Order returns the REST model of o: the body of GET /v1/orders/{id} and the
// entity of every order event. Links: self, collection, customer, products
// (a list), reservation, payment and shipment once their ids are known.
func (r Renderer) Order(o *order.Order) orderevents.Order {
	out := orderevents.Order{
		ID:                 o.ID,
		CustomerID:         o.CustomerID,
		Status:             string(o.Status),
		CancellationReason: string(o.CancellationReason),
		Lines:              make([]orderevents.Line, len(o.Lines)),
		Total:              orderevents.Money(o.Total),
		PaymentMethodID:    o.PaymentMethodID,
		ShippingAddress:    orderevents.Address(o.ShippingAddress),
		PaymentID:          o.PaymentID,
		ShipmentID:         o.ShipmentID,
		Version:            int64(o.Version),
		PlacedAt:           o.PlacedAt.UTC(),
		UpdatedAt:          o.UpdatedAt.UTC(),
		Links:              hal.Links{},
	}
	out.Links.Set("self", r.OrderHref(o.ID))
	out.Links.Set("collection", r.orders.Href("orders"))
	out.Links.Set("customer", r.customers.Href("customers", o.CustomerID))
	out.Links["products"] = hal.Many()
	for i, l := range o.Lines {
		product := r.catalog.Href("products", l.ProductID)
		out.Links.Append("products", product)
		line := orderevents.Line{
			ProductID:   l.ProductID,
			ProductName: l.ProductName,
			Quantity:    int64(l.Quantity),
			UnitPrice:   orderevents.Money(l.UnitPrice),
			Total:       orderevents.Money(l.Total()),
			Links:       hal.Links{},
		}
		line.Links.Set("product", product)
		out.Lines[i] = line
	}
	out.Links.Set("reservation", r.inventory.Href("reservations", o.ID))
	if o.PaymentID != "" {
		out.Links.Set("payment", r.payments.Href("payments", o.PaymentID))
	}
	if o.ShipmentID != "" {
		out.Links.Set("shipment", r.shipping.Href("shipments", o.ShipmentID))
	}
	return out
}
