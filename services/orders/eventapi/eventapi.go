// Package eventapi is the event-driven side of sales.orders: the read models
// of customers and products that placements are checked against, and the
// order's side of the saga. Each handler runs in one transaction guarded by
// the eventbus inbox (eventbus.HandleTx), so an event delivered twice is
// handled once; and each tolerates events that arrive late or out of order
// (the order domain ignores a step that no longer applies).
//
// Consumed:
//
//	crm.customers.customer_registered/updated/removed     -> customers read model
//	catalog.products.product_added/updated/retired        -> products read model
//	logistics.inventory.stock_reservation_rejected        -> pending order cancelled (out_of_stock) + order_cancelled
//	finance.payments.payment_captured                     -> pending order confirmed + order_confirmed
//	finance.payments.payment_declined                     -> pending order cancelled (payment_declined) + order_cancelled
//	logistics.shipments.shipment_scheduled                -> the order learns its shipment id (no event)
//	logistics.shipments.shipment_dispatched               -> confirmed order shipped + order_shipped
//	logistics.shipments.shipment_delivered                -> order delivered + order_delivered
package eventapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
	"github.com/sagittarius-a/sagittarius/services/orders/order"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

// Store is what the handlers need from storage (implemented by mysql.Store);
// each method runs in the caller's transaction.
type Store interface {
	// Step locks order orderID, applies apply, saves the order and enqueues
	// the event of its new status; an unknown order is a permanent error.
	Step(ctx context.Context, tx *sqlx.Tx, orderID string, apply func(o *order.Order, now time.Time) bool) error
	// SaveCustomer and SaveProduct update the read models unless they hold a newer state.
	SaveCustomer(ctx context.Context, tx *sqlx.Tx, c order.CustomerFact) error
	SaveProduct(ctx context.Context, tx *sqlx.Tx, p order.ProductFact) error
}

// Handlers handles the events sales.orders consumes. Its methods have the
// signature of eventbus.HandleTx handlers so that tests can call them.
type Handlers struct {
	store  Store
	logger *slog.Logger
}

// New returns the handlers on store. logger may be nil.
func New(store Store, logger *slog.Logger) *Handlers {
	if logger == nil {
		logger = slog.Default()
	}
	return &Handlers{store: store, logger: logger}
}

// Register subscribes every handler on bus, each in a transaction on db.
func (h *Handlers) Register(bus *eventbus.Bus, db *sqlx.DB) error {
	errs := []error{
		eventbus.HandleTx(bus, db, stockevents.StockReservationRejected, h.StockReservationRejected),
		eventbus.HandleTx(bus, db, paymentevents.PaymentCaptured, h.PaymentCaptured),
		eventbus.HandleTx(bus, db, paymentevents.PaymentDeclined, h.PaymentDeclined),
		eventbus.HandleTx(bus, db, shipmentevents.ShipmentScheduled, h.ShipmentScheduled),
		eventbus.HandleTx(bus, db, shipmentevents.ShipmentDispatched, h.ShipmentDispatched),
		eventbus.HandleTx(bus, db, shipmentevents.ShipmentDelivered, h.ShipmentDelivered),
	}
	for _, et := range []eventbus.EventType[customerevents.Customer]{
		customerevents.CustomerRegistered, customerevents.CustomerUpdated, customerevents.CustomerRemoved,
	} {
		errs = append(errs, eventbus.HandleTx(bus, db, et, h.Customer))
	}
	for _, et := range []eventbus.EventType[productevents.Product]{
		productevents.ProductAdded, productevents.ProductUpdated, productevents.ProductRetired,
	} {
		errs = append(errs, eventbus.HandleTx(bus, db, et, h.Product))
	}
	return errors.Join(errs...)
}

// Customer feeds the customers read model; a removal is final.
func (h *Handlers) Customer(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[customerevents.Customer]) error {
	c := ev.Entity
	return h.store.SaveCustomer(ctx, tx, order.CustomerFact{
		ID:      c.ID,
		Active:  c.Status == customerevents.StatusActive,
		Removed: ev.Type == customerevents.CustomerRemoved.Type() || c.Status == customerevents.StatusRemoved,
		Version: c.Version,
		FiredAt: ev.FiredAt,
	})
}

// Product feeds the products read model; retirement is final.
func (h *Handlers) Product(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[productevents.Product]) error {
	p := ev.Entity
	f := order.ProductFact{
		ID:      p.ID,
		Name:    p.Name,
		Active:  p.Status == productevents.StatusActive,
		Retired: ev.Type == productevents.ProductRetired.Type() || p.Status == productevents.StatusRetired,
		Version: p.Version,
		FiredAt: ev.FiredAt,
	}
	if p.Price.Currency != "" && p.Price.Amount > 0 {
		f.Price = &order.Money{Amount: p.Price.Amount, Currency: p.Price.Currency}
	}
	return h.store.SaveProduct(ctx, tx, f)
}

// StockReservationRejected cancels the pending order: out of stock.
func (h *Handlers) StockReservationRejected(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[stockevents.Reservation]) error {
	return h.store.Step(ctx, tx, ev.Entity.OrderID, func(o *order.Order, now time.Time) bool {
		return o.Reject(order.ReasonOutOfStock, "", now)
	})
}

// PaymentCaptured confirms the pending order.
func (h *Handlers) PaymentCaptured(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[paymentevents.Payment]) error {
	return h.store.Step(ctx, tx, ev.Entity.OrderID, func(o *order.Order, now time.Time) bool {
		return o.Confirm(ev.Entity.ID, now)
	})
}

// PaymentDeclined cancels the pending order: payment declined.
func (h *Handlers) PaymentDeclined(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[paymentevents.Payment]) error {
	return h.store.Step(ctx, tx, ev.Entity.OrderID, func(o *order.Order, now time.Time) bool {
		return o.Reject(order.ReasonPaymentDeclined, ev.Entity.ID, now)
	})
}

// ShipmentScheduled tells the order its shipment id (no event).
func (h *Handlers) ShipmentScheduled(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[shipmentevents.Shipment]) error {
	return h.store.Step(ctx, tx, ev.Entity.OrderID, func(o *order.Order, now time.Time) bool {
		return o.AttachShipment(ev.Entity.ID, now)
	})
}

// ShipmentDispatched ships the confirmed order.
func (h *Handlers) ShipmentDispatched(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[shipmentevents.Shipment]) error {
	return h.store.Step(ctx, tx, ev.Entity.OrderID, func(o *order.Order, now time.Time) bool {
		return o.Ship(ev.Entity.ID, now)
	})
}

// ShipmentDelivered delivers the order. A delivered shipment was dispatched:
// when shipment_delivered overtakes shipment_dispatched (a retried one, say),
// the order is shipped first, so that order_shipped is never skipped; the
// late dispatch then changes nothing.
func (h *Handlers) ShipmentDelivered(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[shipmentevents.Shipment]) error {
	if err := h.store.Step(ctx, tx, ev.Entity.OrderID, func(o *order.Order, now time.Time) bool {
		return o.Ship(ev.Entity.ID, now)
	}); err != nil {
		return err
	}
	return h.store.Step(ctx, tx, ev.Entity.OrderID, func(o *order.Order, now time.Time) bool {
		return o.Deliver(ev.Entity.ID, now)
	})
}
