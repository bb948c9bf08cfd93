package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
	"github.com/sagittarius-a/sagittarius/services/orders/order"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

// Subscribe registers every event sales.orders consumes on b. Each handler
// runs in one transaction guarded by the eventbus inbox (eventbus.HandleTx),
// so an event delivered twice is handled once; and each tolerates events
// that arrive late or out of order (the order domain ignores a step that no
// longer applies).
//
//	crm.customers.customer_registered/updated/removed     -> customers read model
//	catalog.products.product_added/updated/retired        -> products read model
//	logistics.inventory.stock_reservation_rejected        -> pending order cancelled (out_of_stock) + order_cancelled
//	finance.payments.payment_captured                     -> pending order confirmed + order_confirmed
//	finance.payments.payment_declined                     -> pending order cancelled (payment_declined) + order_cancelled
//	logistics.shipments.shipment_scheduled                -> the order learns its shipment id (no event)
//	logistics.shipments.shipment_dispatched               -> confirmed order shipped + order_shipped
//	logistics.shipments.shipment_delivered                -> order delivered + order_delivered
func (s *Store) Subscribe(b *eventbus.Bus) error {
	return errors.Join(
		s.subscribeReadModels(b),

		eventbus.HandleTx(b, s.db, stockevents.StockReservationRejected,
			func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[stockevents.Reservation]) error {
				return s.step(ctx, tx, ev.Entity.OrderID, func(o *order.Order, now time.Time) bool {
					return o.Reject(order.ReasonOutOfStock, "", now)
				})
			}),
		eventbus.HandleTx(b, s.db, paymentevents.PaymentCaptured,
			func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[paymentevents.Payment]) error {
				return s.step(ctx, tx, ev.Entity.OrderID, func(o *order.Order, now time.Time) bool {
					return o.Confirm(ev.Entity.ID, now)
				})
			}),
		eventbus.HandleTx(b, s.db, paymentevents.PaymentDeclined,
			func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[paymentevents.Payment]) error {
				return s.step(ctx, tx, ev.Entity.OrderID, func(o *order.Order, now time.Time) bool {
					return o.Reject(order.ReasonPaymentDeclined, ev.Entity.ID, now)
				})
			}),
		eventbus.HandleTx(b, s.db, shipmentevents.ShipmentScheduled,
			func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[shipmentevents.Shipment]) error {
				return s.step(ctx, tx, ev.Entity.OrderID, func(o *order.Order, now time.Time) bool {
					return o.AttachShipment(ev.Entity.ID, now)
				})
			}),
		eventbus.HandleTx(b, s.db, shipmentevents.ShipmentDispatched,
			func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[shipmentevents.Shipment]) error {
				return s.step(ctx, tx, ev.Entity.OrderID, func(o *order.Order, now time.Time) bool {
					return o.Ship(ev.Entity.ID, now)
				})
			}),
		eventbus.HandleTx(b, s.db, shipmentevents.ShipmentDelivered,
			func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[shipmentevents.Shipment]) error {
				// A delivered shipment was dispatched. When shipment_delivered
				// overtakes shipment_dispatched (a retried one, say), the order
				// is shipped first, so that order_shipped is never skipped; the
				// late dispatch then changes nothing.
				if err := s.step(ctx, tx, ev.Entity.OrderID, func(o *order.Order, now time.Time) bool {
					return o.Ship(ev.Entity.ID, now)
				}); err != nil {
					return err
				}
				return s.step(ctx, tx, ev.Entity.OrderID, func(o *order.Order, now time.Time) bool {
					return o.Deliver(ev.Entity.ID, now)
				})
			}),
	)
}

// statusEvents maps the status an order moves to onto the event announcing it.
var statusEvents = map[order.Status]eventbus.EventType[orderevents.Order]{
	order.StatusConfirmed: orderevents.OrderConfirmed,
	order.StatusCancelled: orderevents.OrderCancelled,
	order.StatusShipped:   orderevents.OrderShipped,
	order.StatusDelivered: orderevents.OrderDelivered,
}

// step applies one saga step to order orderID in tx: it locks the order, runs
// apply, saves the order when its version changed, and enqueues the event of
// its new status when apply reports a status change. An unknown order is a
// permanent error: the event is dead-lettered for a person to look at.
func (s *Store) step(ctx context.Context, tx *sqlx.Tx, orderID string, apply func(o *order.Order, now time.Time) bool) error {
	o, err := getOrder(ctx, tx, orderID, true)
	if errors.Is(err, order.ErrNotFound) {
		return eventbus.Permanent(err)
	}
	if err != nil {
		return err
	}
	version := o.Version
	changed := apply(o, s.now())
	if o.Version == version {
		return nil
	}
	if err := updateOrder(ctx, tx, o); err != nil {
		return err
	}
	if !changed {
		return nil
	}
	et, ok := statusEvents[o.Status]
	if !ok {
		return fmt.Errorf("mysql: no event for status %s", o.Status)
	}
	return eventbus.Emit(ctx, tx, et, s.render(o))
}

// readModelRow is the stored state of one customer or product of a read
// model: its version and fired_at decide whether an event is newer.
type readModelRow struct {
	Version int64     `db:"version"`
	FiredAt time.Time `db:"fired_at"`
	Gone    bool      `db:"gone"`
}

// newer reports whether an event at (version, firedAt) is newer than row:
// a higher version wins; with equal versions (or none), a later fired_at.
func (row readModelRow) newer(version int64, firedAt time.Time) bool {
	if version != row.Version {
		return version > row.Version
	}
	return firedAt.After(row.FiredAt)
}

// customerState is what one customer event says about a customer.
type customerState struct {
	ID      string
	Active  bool
	Removed bool // customer_removed: the customer can never order again
	Version int64
	FiredAt time.Time
}

// saveCustomer applies c to the customers read model unless the stored state
// is newer. A removal is final, whatever arrives after it.
func saveCustomer(ctx context.Context, tx *sqlx.Tx, c customerState) error {
	var row readModelRow
	err := tx.GetContext(ctx, &row, `SELECT version, fired_at, removed AS gone FROM customers WHERE id = ? FOR UPDATE`, c.ID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, `INSERT INTO customers (id, active, removed, version, fired_at) VALUES (?, ?, ?, ?, ?)`,
			c.ID, c.Active && !c.Removed, c.Removed, c.Version, c.FiredAt)
	case err != nil:
	case c.Removed:
		_, err = tx.ExecContext(ctx, `UPDATE customers SET active = FALSE, removed = TRUE WHERE id = ?`, c.ID)
	case row.Gone || !row.newer(c.Version, c.FiredAt):
		return nil
	default:
		_, err = tx.ExecContext(ctx, `UPDATE customers SET active = ?, version = ?, fired_at = ? WHERE id = ?`,
			c.Active, c.Version, c.FiredAt, c.ID)
	}
	if err != nil {
		return fmt.Errorf("mysql: save customer %s: %w", c.ID, err)
	}
	return nil
}

// productState is what one product event says about a product.
type productState struct {
	ID      string
	Name    string
	Active  bool
	Retired bool         // product_retired: the product can never be ordered again
	Price   *order.Money // nil when unpriced
	Version int64
	FiredAt time.Time
}

// saveProduct applies p to the products read model unless the stored state
// is newer. Retirement is final, whatever arrives after it.
func saveProduct(ctx context.Context, tx *sqlx.Tx, p productState) error {
	var amount sql.NullInt64
	var currency sql.NullString
	if p.Price != nil && p.Price.Currency != "" {
		amount = sql.NullInt64{Int64: p.Price.Amount, Valid: true}
		currency = sql.NullString{String: p.Price.Currency, Valid: true}
	}
	var row readModelRow
	err := tx.GetContext(ctx, &row, `SELECT version, fired_at, retired AS gone FROM products WHERE id = ? FOR UPDATE`, p.ID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, `INSERT INTO products (id, name, active, retired, price_amount, currency, version, fired_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, p.ID, p.Name, p.Active && !p.Retired, p.Retired, amount, currency, p.Version, p.FiredAt)
	case err != nil:
	case p.Retired:
		_, err = tx.ExecContext(ctx, `UPDATE products SET active = FALSE, retired = TRUE WHERE id = ?`, p.ID)
	case row.Gone || !row.newer(p.Version, p.FiredAt):
		return nil
	default:
		_, err = tx.ExecContext(ctx, `UPDATE products SET name = ?, active = ?, price_amount = ?, currency = ?, version = ?, fired_at = ?
			WHERE id = ?`, p.Name, p.Active, amount, currency, p.Version, p.FiredAt, p.ID)
	}
	if err != nil {
		return fmt.Errorf("mysql: save product %s: %w", p.ID, err)
	}
	return nil
}
