// Package eventapi is the event-driven side of logistics.shipments: it keeps the shipping address
// of orders and schedules or cancels their shipments, each event inside its eventbus.HandleTx
// transaction (inbox: handled once; follow-up events go to the outbox in the same transaction).
//
// Consumed:
//
//	sales.orders.order_placed     -> the order's shipping address
//	sales.orders.order_confirmed  -> shipment scheduled to that address: shipment_scheduled
//	sales.orders.order_cancelled  -> a scheduled shipment cancelled: shipment_cancelled
//
// An order_cancelled that arrives before order_confirmed is remembered: the order gets no shipment.
// Each handler is idempotent also without the inbox.
package eventapi

import (
	"context"
	"errors"
	"log/slog"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipment"
)

// Store is what the handlers need from storage (implemented by mysql.Store); each method runs in
// the caller's transaction.
type Store interface {
	RecordAddress(ctx context.Context, tx *sqlx.Tx, orderID string, a shipment.Address) error
	ScheduleShipment(ctx context.Context, tx *sqlx.Tx, orderID string, a shipment.Address) (shipment.Shipment, bool, error)
	RecordCustomer(ctx context.Context, tx *sqlx.Tx, orderID, customerID string) error
	CancelShipment(ctx context.Context, tx *sqlx.Tx, orderID string) (shipment.Shipment, bool, error)
}

// Handlers handles the events shipping consumes. Its methods have the signature of eventbus.HandleTx
// handlers so that tests can call them directly.
type Handlers struct {
	store  Store
	logger *slog.Logger
}

// New returns the handlers on store.
func New(store Store, logger *slog.Logger) *Handlers {
	if logger == nil {
		logger = slog.Default()
	}
	return &Handlers{store: store, logger: logger}
}

// Register subscribes every handler on bus, each in a transaction on db.
func (h *Handlers) Register(bus *eventbus.Bus, db *sqlx.DB) error {
	return errors.Join(
		eventbus.HandleTx(bus, db, orderevents.OrderPlaced, h.OrderPlaced),
		eventbus.HandleTx(bus, db, orderevents.OrderConfirmed, h.OrderConfirmed),
		eventbus.HandleTx(bus, db, orderevents.OrderCancelled, h.OrderCancelled),
	)
}

func permanentIfInvalid(err error) error {
	if errors.Is(err, shipment.ErrInvalid) {
		return eventbus.Permanent(err)
	}
	return err
}

func address(a orderevents.Address) shipment.Address {
	return shipment.Address{Name: a.Name, Line1: a.Line1, Line2: a.Line2, PostalCode: a.PostalCode, City: a.City, Country: a.Country}
}

// OrderPlaced records the order's customer and shipping address.
func (h *Handlers) OrderPlaced(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[orderevents.Order]) error {
	if err := h.store.RecordCustomer(ctx, tx, ev.Entity.ID, ev.Entity.CustomerID); err != nil {
		return permanentIfInvalid(err)
	}
	return permanentIfInvalid(h.store.RecordAddress(ctx, tx, ev.Entity.ID, address(ev.Entity.ShippingAddress)))
}

// OrderConfirmed schedules the order's shipment (the address in the event wins over the one
// recorded from order_placed).
func (h *Handlers) OrderConfirmed(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[orderevents.Order]) error {
	if err := h.store.RecordCustomer(ctx, tx, ev.Entity.ID, ev.Entity.CustomerID); err != nil {
		return permanentIfInvalid(err)
	}
	sh, created, err := h.store.ScheduleShipment(ctx, tx, ev.Entity.ID, address(ev.Entity.ShippingAddress))
	if err != nil {
		return permanentIfInvalid(err)
	}
	if created {
		h.logger.InfoContext(ctx, "shipment scheduled", "order_id", sh.OrderID, "shipment_id", sh.ID)
	}
	return nil
}

// OrderCancelled cancels the order's scheduled shipment, or remembers the cancellation.
func (h *Handlers) OrderCancelled(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[orderevents.Order]) error {
	sh, cancelled, err := h.store.CancelShipment(ctx, tx, ev.Entity.ID)
	if err != nil {
		return permanentIfInvalid(err)
	}
	if cancelled {
		h.logger.InfoContext(ctx, "shipment cancelled", "order_id", sh.OrderID, "shipment_id", sh.ID)
	}
	return nil
}
