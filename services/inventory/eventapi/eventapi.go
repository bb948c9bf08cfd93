// Package eventapi is the event-driven side of logistics.inventory: it subscribes to other
// services' events and turns each into one change of the inventory, inside the eventbus.HandleTx
// transaction (inbox: an event is handled once; the follow-up events go to the outbox in the same
// transaction).
//
// Consumed:
//
//	catalog.products.product_added    -> stock item with zero stock
//	catalog.products.product_updated  -> the stock item's name
//	catalog.products.product_retired  -> stock item retired (no more replenishments)
//	sales.orders.order_placed         -> reserve every line or none: stock_reserved | stock_reservation_rejected
//	sales.orders.order_cancelled      -> release a held reservation once: stock_released
//	logistics.shipments.shipment_dispatched -> ship a held reservation once (its goods left): stock_shipped
//
// Every handler is idempotent also without the inbox (a republished event with a new uuid changes
// nothing twice) and tolerant of order: a product retired before it was added stays retired, an
// order cancelled before it was placed gets its reservation rejected.
package eventapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
	"github.com/sagittarius-a/sagittarius/services/inventory/inventory"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

// Store is what the handlers need from storage (implemented by mysql.Store). Each method runs in the
// caller's transaction tx.
type Store interface {
	AddProduct(ctx context.Context, tx *sqlx.Tx, productID, name string) error
	RenameProduct(ctx context.Context, tx *sqlx.Tx, productID, name string) error
	RetireProduct(ctx context.Context, tx *sqlx.Tx, productID, name string) error
	ReserveStock(ctx context.Context, tx *sqlx.Tx, orderID string, lines []inventory.Line) (inventory.Reservation, bool, error)
	ReleaseStock(ctx context.Context, tx *sqlx.Tx, orderID string) (inventory.Reservation, bool, error)
	ShipStock(ctx context.Context, tx *sqlx.Tx, orderID string) (inventory.Reservation, bool, error)
}

// Handlers handles the events inventory consumes. Its methods have the signature of
// eventbus.HandleTx handlers so that tests can call them directly.
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
		eventbus.HandleTx(bus, db, productevents.ProductAdded, h.ProductAdded),
		eventbus.HandleTx(bus, db, productevents.ProductUpdated, h.ProductUpdated),
		eventbus.HandleTx(bus, db, productevents.ProductRetired, h.ProductRetired),
		eventbus.HandleTx(bus, db, orderevents.OrderPlaced, h.OrderPlaced),
		eventbus.HandleTx(bus, db, orderevents.OrderCancelled, h.OrderCancelled),
		eventbus.HandleTx(bus, db, shipmentevents.ShipmentDispatched, h.ShipmentDispatched),
	)
}

// permanentIfInvalid marks domain validation errors permanent: redelivering the event cannot fix them.
func permanentIfInvalid(err error) error {
	if errors.Is(err, inventory.ErrInvalid) {
		return eventbus.Permanent(err)
	}
	return err
}

// ProductAdded records a new product with zero stock.
func (h *Handlers) ProductAdded(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[productevents.Product]) error {
	return permanentIfInvalid(h.store.AddProduct(ctx, tx, ev.Entity.ID, ev.Entity.Name))
}

// ProductUpdated records a product's name.
func (h *Handlers) ProductUpdated(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[productevents.Product]) error {
	return permanentIfInvalid(h.store.RenameProduct(ctx, tx, ev.Entity.ID, ev.Entity.Name))
}

// ProductRetired marks a product retired.
func (h *Handlers) ProductRetired(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[productevents.Product]) error {
	return permanentIfInvalid(h.store.RetireProduct(ctx, tx, ev.Entity.ID, ev.Entity.Name))
}

// OrderPlaced reserves the order's lines (all or none).
func (h *Handlers) OrderPlaced(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[orderevents.Order]) error {
	lines := make([]inventory.Line, 0, len(ev.Entity.Lines))
	for _, l := range ev.Entity.Lines {
		lines = append(lines, inventory.Line{ProductID: l.ProductID, Quantity: int64(l.Quantity)})
	}
	r, created, err := h.store.ReserveStock(ctx, tx, ev.Entity.ID, lines)
	if err != nil {
		return permanentIfInvalid(fmt.Errorf("order_placed %s: %w", ev.UUID, err))
	}
	if created {
		h.logger.InfoContext(ctx, "reservation", "order_id", r.OrderID, "status", r.Status, "reason", r.Reason)
	}
	return nil
}

// OrderCancelled releases the order's held reservation, or remembers the cancellation.
func (h *Handlers) OrderCancelled(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[orderevents.Order]) error {
	r, released, err := h.store.ReleaseStock(ctx, tx, ev.Entity.ID)
	if err != nil {
		return permanentIfInvalid(fmt.Errorf("order_cancelled %s: %w", ev.UUID, err))
	}
	if released {
		h.logger.InfoContext(ctx, "reservation released", "order_id", r.OrderID)
	}
	return nil
}

// ShipmentDispatched counts the order's held stock down: its goods left with the shipment.
func (h *Handlers) ShipmentDispatched(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[shipmentevents.Shipment]) error {
	r, shipped, err := h.store.ShipStock(ctx, tx, ev.Entity.OrderID)
	if err != nil {
		return permanentIfInvalid(fmt.Errorf("shipment_dispatched %s: %w", ev.UUID, err))
	}
	if shipped {
		h.logger.InfoContext(ctx, "reservation shipped", "order_id", r.OrderID)
	} else {
		h.logger.InfoContext(ctx, "shipment dispatched, nothing held to ship", "order_id", ev.Entity.OrderID, "status", r.Status)
	}
	return nil
}
