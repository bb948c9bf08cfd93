// Package stockevents defines the integration events that logistics.inventory publishes.
//
// It is the only package of the inventory service that other services may import. Each event
// carries its entity in the same shape as the REST model of the inventory API, HAL links included;
// links are absolute and point at the gateway (for example
// http://127.0.0.1:8080/inventory/v1/reservations/{order_id}).
//
// Events:
//
//	logistics.inventory.stock_replenished          {"stock": Stock}
//	logistics.inventory.stock_reserved             {"reservation": Reservation} status "held"
//	logistics.inventory.stock_reservation_rejected {"reservation": Reservation} status "rejected", with Reason and RejectedLines
//	logistics.inventory.stock_released             {"reservation": Reservation} status "released"
//	logistics.inventory.stock_shipped              {"reservation": Reservation} status "shipped"
package stockevents

import (
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// Service is the publishing service: its queue name and the app_id of its messages.
const Service = "logistics.inventory"

// Reservation statuses.
const (
	ReservationHeld     = "held"     // stock is set aside for the order
	ReservationRejected = "rejected" // nothing was reserved; see Reason and RejectedLines
	ReservationReleased = "released" // the held stock went back to available (order cancelled)
	ReservationShipped  = "shipped"  // the held stock left with the order's shipment (shipment dispatched)
)

// Reasons of a rejected reservation.
const (
	ReasonOutOfStock     = "out_of_stock"    // at least one line could not be covered; see RejectedLines
	ReasonOrderCancelled = "order_cancelled" // the order had been cancelled before it was seen placed
	ReasonInvalidOrder   = "invalid_order"   // the order has no lines or a line with a quantity below one
)

// Stock is the stock level of one product: the REST model of /v1/stock-items/{product_id}.
// Links: self, product (catalog), replenishments, reservations.
type Stock struct {
	ProductID   string `json:"product_id"`
	ProductName string `json:"product_name,omitempty"`
	// Status is "active" while the product is sold, "retired" once the catalog retired it.
	Status string `json:"status"`
	// Available is the quantity that can still be reserved; never below zero.
	Available int64 `json:"available"`
	// Reserved is the quantity held for orders whose reservation is held.
	Reserved int64 `json:"reserved"`
	// Shipped is the quantity that left with dispatched shipments.
	Shipped int64 `json:"shipped"`
	// Replenished is the sum of every replenishment of the product. Always
	// available + reserved + shipped = replenished.
	Replenished int64     `json:"replenished"`
	Version     int64     `json:"version"`
	UpdatedAt   time.Time `json:"updated_at"`
	Links       hal.Links `json:"_links" links:"self,product,replenishments,reservations"`
}

// Reservation is the stock reservation made for one order: the REST model of
// /v1/reservations/{order_id}. One order has at most one reservation.
// Links: self, order (orders service).
type Reservation struct {
	OrderID string `json:"order_id"`
	// Status is one of ReservationHeld, ReservationRejected, ReservationReleased, ReservationShipped.
	Status string `json:"status"`
	// Reason is set for a rejected reservation: ReasonOutOfStock or ReasonOrderCancelled.
	Reason string `json:"reason,omitempty"`
	// Lines are the order's lines, one per product.
	Lines []Line `json:"lines"`
	// RejectedLines lists, for ReasonOutOfStock, the lines that could not be covered.
	RejectedLines []RejectedLine `json:"rejected_lines,omitempty"`
	CreatedAt     time.Time      `json:"created_at"`
	ReleasedAt    *time.Time     `json:"released_at,omitempty"`
	ShippedAt     *time.Time     `json:"shipped_at,omitempty"`
	Links         hal.Links      `json:"_links" links:"self,order,stock-items"`
}

// Line is the quantity of one product in a reservation. Links: product (catalog), stock-item.
type Line struct {
	ProductID string    `json:"product_id"`
	Quantity  int64     `json:"quantity"`
	Links     hal.Links `json:"_links,omitempty" links:"product,stock-item"`
}

// RejectedLine is a line that stock could not cover: Requested was asked, Available was there.
type RejectedLine struct {
	ProductID string `json:"product_id"`
	Requested int64  `json:"requested"`
	Available int64  `json:"available"`
}

// The events of logistics.inventory.
var (
	StockReplenished         = eventbus.MustEventType[Stock](Service, "stock_replenished", "stock")
	StockReserved            = eventbus.MustEventType[Reservation](Service, "stock_reserved", "reservation")
	StockReservationRejected = eventbus.MustEventType[Reservation](Service, "stock_reservation_rejected", "reservation")
	StockReleased            = eventbus.MustEventType[Reservation](Service, "stock_released", "reservation")
	StockShipped             = eventbus.MustEventType[Reservation](Service, "stock_shipped", "reservation")
)

// All lists every event type of logistics.inventory, for Bus.Publishes and contracts.
var All = []eventbus.EventInfoer{StockReplenished, StockReserved, StockReservationRejected, StockReleased, StockShipped}
