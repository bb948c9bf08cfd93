// Package shipmentevents defines the integration events that logistics.shipments publishes.
//
// It is the only package of the shipping service that other services may import. Each event
// carries its entity in the same shape as the REST model of /v1/shipments/{id}, HAL links included;
// links are absolute and point at the gateway.
//
// Events:
//
//	logistics.shipments.shipment_scheduled  {"shipment": Shipment} status "scheduled"
//	logistics.shipments.shipment_dispatched {"shipment": Shipment} status "dispatched"
//	logistics.shipments.shipment_delivered  {"shipment": Shipment} status "delivered"
//	logistics.shipments.shipment_cancelled  {"shipment": Shipment} status "cancelled"
package shipmentevents

import (
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// Service is the publishing service: its queue name and the app_id of its messages.
const Service = "logistics.shipments"

// Shipment statuses. The only transitions are scheduled -> dispatched -> delivered and
// scheduled -> cancelled.
const (
	StatusScheduled  = "scheduled"
	StatusDispatched = "dispatched"
	StatusDelivered  = "delivered"
	StatusCancelled  = "cancelled"
)

// Address is where a shipment goes, copied from the order's shipping address.
type Address struct {
	Name       string `json:"name,omitempty"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	PostalCode string `json:"postal_code"`
	City       string `json:"city"`
	Country    string `json:"country"`
}

// Shipment is the delivery of one confirmed order: the REST model of /v1/shipments/{id}.
// Links: self, order (orders service).
type Shipment struct {
	ID      string `json:"id"`
	OrderID string `json:"order_id"`
	// Status is one of StatusScheduled, StatusDispatched, StatusDelivered, StatusCancelled.
	Status  string  `json:"status"`
	Address Address `json:"address"`
	// Version grows by one with every change; the HTTP ETag is derived from it.
	Version      int64      `json:"version"`
	ScheduledAt  time.Time  `json:"scheduled_at"`
	DispatchedAt *time.Time `json:"dispatched_at,omitempty"`
	DeliveredAt  *time.Time `json:"delivered_at,omitempty"`
	CancelledAt  *time.Time `json:"cancelled_at,omitempty"`
	Links        hal.Links  `json:"_links" links:"self,order"`
}

// The events of logistics.shipments.
var (
	ShipmentScheduled  = eventbus.MustEventType[Shipment](Service, "shipment_scheduled", "shipment")
	ShipmentDispatched = eventbus.MustEventType[Shipment](Service, "shipment_dispatched", "shipment")
	ShipmentDelivered  = eventbus.MustEventType[Shipment](Service, "shipment_delivered", "shipment")
	ShipmentCancelled  = eventbus.MustEventType[Shipment](Service, "shipment_cancelled", "shipment")
)

// All lists every event type of logistics.shipments, for Bus.Publishes and contracts.
var All = []eventbus.EventInfoer{ShipmentScheduled, ShipmentDispatched, ShipmentDelivered, ShipmentCancelled}
