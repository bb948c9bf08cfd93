package mysql

// What the event handlers (package eventapi) do inside their transactions:
// the saga steps of an order and the read models of customers and products.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/services/orders/order"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

// statusEvents maps the status an order moves to onto the event announcing it.
var statusEvents = map[order.Status]eventbus.EventType[orderevents.Order]{
	order.StatusConfirmed: orderevents.OrderConfirmed,
	order.StatusCancelled: orderevents.OrderCancelled,
	order.StatusShipped:   orderevents.OrderShipped,
	order.StatusDelivered: orderevents.OrderDelivered,
}

// Step applies one saga step to order orderID in tx (an event handler's
// transaction): it locks the order, runs apply, saves the order when its
// version changed, and enqueues the event of its new status when apply
// reports a status change. An unknown order is a permanent error
// (eventbus.Permanent): the event is dead-lettered for a person to look at.
func (s *Store) Step(ctx context.Context, tx *sqlx.Tx, orderID string, apply func(o *order.Order, now time.Time) bool) error {
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

// SaveCustomer applies c to the customers read model in tx unless the stored
// state is newer. A removal is final, whatever arrives after it.
func (s *Store) SaveCustomer(ctx context.Context, tx *sqlx.Tx, c order.CustomerFact) error {
	return saveCustomer(ctx, tx, c)
}

func saveCustomer(ctx context.Context, tx *sqlx.Tx, c order.CustomerFact) error {
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

// SaveProduct applies p to the products read model in tx unless the stored
// state is newer. Retirement is final, whatever arrives after it.
func (s *Store) SaveProduct(ctx context.Context, tx *sqlx.Tx, p order.ProductFact) error {
	return saveProduct(ctx, tx, p)
}

func saveProduct(ctx context.Context, tx *sqlx.Tx, p order.ProductFact) error {
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
