// Package mysql stores the shipping domain in MySQL/MariaDB with sqlx, and writes the events each
// change causes into the eventbus outbox inside the same transaction.
//
// Exported methods without a tx parameter run in a transaction of their own. Methods that take a
// *sqlx.Tx run in the caller's transaction (an eventbus.HandleTx handler's).
package mysql

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipment"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the service's goose migrations, for the service kit
// (service.Spec.Migrations), which applies them with the bus tables.
var Migrations = mysqldb.Migrations(migrations, "migrations")

// Representation renders a shipment as its REST model, which is also the event entity. httpapi
// implements it; it must be safe for concurrent use.
type Representation interface {
	Shipment(shipment.Shipment) shipmentevents.Shipment
}

// Store is the shipping storage. It is safe for concurrent use.
type Store struct {
	db     *sqlx.DB
	rep    Representation
	notify func()
	now    func() time.Time
}

// NewStore returns a Store on db. rep renders event entities; notify, when not nil, is called after
// a transaction of the store's own that enqueued events has committed (eventbus.Relay.Notify).
func NewStore(db *sqlx.DB, rep Representation, notify func()) (*Store, error) {
	if db == nil || rep == nil {
		return nil, errors.New("mysql: NewStore needs a db and a representation")
	}
	if notify == nil {
		notify = func() {}
	}
	return &Store{db: db, rep: rep, notify: notify, now: func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }}, nil
}

// RecordAddress records the shipping address of an order from order_placed (ScheduleShipment
// records the one of order_confirmed); an empty address changes nothing. The address of a shipment
// already scheduled does not change.
func (s *Store) RecordAddress(ctx context.Context, tx *sqlx.Tx, orderID string, a shipment.Address) error {
	if !shipment.ValidID(orderID) {
		return fmt.Errorf("order id %q: %w", truncate(orderID, 120), shipment.ErrInvalid)
	}
	if a.IsZero() {
		return nil
	}
	a = clampAddress(a)
	now := s.now()
	_, err := tx.ExecContext(ctx, `INSERT INTO orders (order_id, name, line1, line2, postal_code, city, country, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE name = VALUES(name), line1 = VALUES(line1), line2 = VALUES(line2),
			postal_code = VALUES(postal_code), city = VALUES(city), country = VALUES(country), updated_at = VALUES(updated_at)`,
		orderID, a.Name, a.Line1, a.Line2, a.PostalCode, a.City, a.Country, now)
	if err != nil {
		return fmt.Errorf("record address of order %s: %w", orderID, err)
	}
	return nil
}

// RecordCustomer records the customer who placed the order (from
// order_placed or order_confirmed; the first one known stays).
func (s *Store) RecordCustomer(ctx context.Context, tx *sqlx.Tx, orderID, customerID string) error {
	if !shipment.ValidID(orderID) {
		return fmt.Errorf("order id %q: %w", truncate(orderID, 120), shipment.ErrInvalid)
	}
	if customerID == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO orders (order_id, customer_id, updated_at) VALUES (?, ?, ?)
		ON DUPLICATE KEY UPDATE customer_id = IF(customer_id = '', VALUES(customer_id), customer_id)`,
		orderID, truncate(customerID, 100), s.now())
	if err != nil {
		return fmt.Errorf("record customer of order %s: %w", orderID, err)
	}
	return nil
}

// CustomerOf returns the customer who placed the order orderID, "" when
// unknown.
func (s *Store) CustomerOf(ctx context.Context, orderID string) (string, error) {
	var id string
	err := s.db.GetContext(ctx, &id, `SELECT customer_id FROM orders WHERE order_id = ?`, orderID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// ScheduleShipment handles a confirmed order in tx: it records the confirmation and the order's
// address a (order_confirmed carries it, and it wins over the one recorded from order_placed; a
// zero a changes no address) and, unless the order was cancelled or already has a shipment,
// schedules one to the order's address and enqueues shipment_scheduled. created is false when
// nothing was scheduled. It fails (to be retried) when no address is known.
func (s *Store) ScheduleShipment(ctx context.Context, tx *sqlx.Tx, orderID string, a shipment.Address) (sh shipment.Shipment, created bool, err error) {
	if !shipment.ValidID(orderID) {
		return shipment.Shipment{}, false, fmt.Errorf("order id %q: %w", truncate(orderID, 120), shipment.ErrInvalid)
	}
	now := s.now()
	// One upsert records the confirmation (its first time is kept) with the address, and locks the
	// order's row until tx ends: no other handler of this order runs meanwhile.
	if a.IsZero() {
		_, err = tx.ExecContext(ctx, `INSERT INTO orders (order_id, confirmed_at, updated_at) VALUES (?, ?, ?)
			ON DUPLICATE KEY UPDATE confirmed_at = IFNULL(confirmed_at, VALUES(confirmed_at))`, orderID, now, now)
	} else {
		a = clampAddress(a)
		_, err = tx.ExecContext(ctx, `INSERT INTO orders (order_id, name, line1, line2, postal_code, city, country, confirmed_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON DUPLICATE KEY UPDATE name = VALUES(name), line1 = VALUES(line1), line2 = VALUES(line2),
				postal_code = VALUES(postal_code), city = VALUES(city), country = VALUES(country), updated_at = VALUES(updated_at),
				confirmed_at = IFNULL(confirmed_at, VALUES(confirmed_at))`,
			orderID, a.Name, a.Line1, a.Line2, a.PostalCode, a.City, a.Country, now, now)
	}
	if err != nil {
		return shipment.Shipment{}, false, fmt.Errorf("confirm order %s: %w", orderID, err)
	}
	if !a.IsZero() {
		// The address is known (it is the order's now): one statement schedules the shipment unless
		// the order was cancelled (the SELECT from its row finds nothing) or already has a shipment
		// (the unique key shipments_order: the duplicate changes nothing). Its affected rows are 1
		// when the shipment was inserted, 0 when it was not (told apart below, as is a zero a).
		sh = shipment.Schedule(uuid.NewString(), orderID, a, now)
		res, err := tx.ExecContext(ctx, `INSERT INTO shipments (id, order_id, status, name, line1, line2, postal_code, city, country,
			version, scheduled_at) SELECT ?, order_id, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM orders WHERE order_id = ? AND cancelled_at IS NULL
			ON DUPLICATE KEY UPDATE shipments.id = shipments.id`,
			sh.ID, string(sh.Status), a.Name, a.Line1, a.Line2, a.PostalCode, a.City, a.Country, sh.Version, sh.ScheduledAt, orderID)
		if err != nil {
			return shipment.Shipment{}, false, fmt.Errorf("schedule shipment of order %s: %w", orderID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return shipment.Shipment{}, false, fmt.Errorf("schedule shipment of order %s: %w", orderID, err)
		}
		if n == 1 {
			if err := eventbus.Emit(ctx, tx, shipmentevents.ShipmentScheduled, s.rep.Shipment(sh)); err != nil {
				return shipment.Shipment{}, false, err
			}
			return sh, true, nil
		}
	}
	// Not scheduled above: the event has no address, or the order was cancelled, or its shipment
	// was scheduled before.
	var o struct {
		shipment.Address
		Cancelled sql.NullTime `db:"cancelled_at"`
	}
	if err := tx.QueryRowxContext(ctx, `SELECT name, line1, line2, postal_code, city, country, cancelled_at FROM orders
		WHERE order_id = ? FOR UPDATE`, orderID).Scan(&o.Name, &o.Line1, &o.Line2, &o.PostalCode, &o.City, &o.Country, &o.Cancelled); err != nil {
		return shipment.Shipment{}, false, fmt.Errorf("order %s: %w", orderID, err)
	}
	if existing, err := s.get(ctx, tx, `order_id = ?`, orderID, false); err == nil {
		return existing, false, nil
	} else if !errors.Is(err, shipment.ErrNotFound) {
		return shipment.Shipment{}, false, err
	}
	if o.Cancelled.Valid {
		return shipment.Shipment{}, false, nil
	}
	if o.Address.IsZero() {
		return shipment.Shipment{}, false, fmt.Errorf("order %s: no shipping address known yet", orderID)
	}
	sh = shipment.Schedule(uuid.NewString(), orderID, o.Address, now)
	a = sh.Address
	if _, err := tx.ExecContext(ctx, `INSERT INTO shipments (id, order_id, status, name, line1, line2, postal_code, city, country,
		version, scheduled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sh.ID, sh.OrderID, string(sh.Status), a.Name, a.Line1, a.Line2, a.PostalCode, a.City, a.Country, sh.Version, sh.ScheduledAt); err != nil {
		return shipment.Shipment{}, false, fmt.Errorf("schedule shipment of order %s: %w", orderID, err)
	}
	if err := eventbus.Emit(ctx, tx, shipmentevents.ShipmentScheduled, s.rep.Shipment(sh)); err != nil {
		return shipment.Shipment{}, false, err
	}
	return sh, true, nil
}

// CancelShipment handles a cancelled order in tx: it remembers the cancellation (a late
// order_confirmed schedules nothing) and cancels the order's shipment while it is scheduled,
// enqueuing shipment_cancelled. cancelled is false when nothing was cancelled.
func (s *Store) CancelShipment(ctx context.Context, tx *sqlx.Tx, orderID string) (sh shipment.Shipment, cancelled bool, err error) {
	if !shipment.ValidID(orderID) {
		return shipment.Shipment{}, false, fmt.Errorf("order id %q: %w", truncate(orderID, 120), shipment.ErrInvalid)
	}
	now := s.now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO orders (order_id, cancelled_at, updated_at) VALUES (?, ?, ?)
		ON DUPLICATE KEY UPDATE cancelled_at = IFNULL(cancelled_at, VALUES(cancelled_at))`, orderID, now, now); err != nil {
		return shipment.Shipment{}, false, fmt.Errorf("cancel order %s: %w", orderID, err)
	}
	// The order row is locked: no handler of this order runs meanwhile. A locking read by order id
	// of a shipment that may not exist would take a gap lock that deadlocks the scheduling of other
	// orders, so look first, then lock the shipment row itself (the API may be changing it).
	sh, err = s.get(ctx, tx, `order_id = ?`, orderID, false)
	if errors.Is(err, shipment.ErrNotFound) {
		return shipment.Shipment{}, false, nil
	}
	if err == nil {
		sh, err = s.get(ctx, tx, `id = ?`, sh.ID, true)
	}
	if err != nil {
		return shipment.Shipment{}, false, err
	}
	next, ok := sh.Cancel(now)
	if !ok {
		return sh, false, nil
	}
	if err := s.save(ctx, tx, sh.Version, next); err != nil {
		return shipment.Shipment{}, false, err
	}
	return next, true, nil
}

// UpdateShipment changes shipment id in one transaction: it locks it, calls change with it (the
// rule: it returns the next state and whether anything changed, or an error such as
// shipment.ErrVersionMismatch or shipment.ErrIllegalTransition), stores the result and enqueues
// shipment_dispatched or shipment_delivered for the new status. It returns the shipment as stored,
// or with change's error the shipment as read. The transaction runs again on a deadlock or lock wait
// timeout (mysqldb.InTx), so change may be called more than once, each time with the shipment as
// then read.
func (s *Store) UpdateShipment(ctx context.Context, id string, change func(shipment.Shipment, time.Time) (shipment.Shipment, bool, error)) (shipment.Shipment, error) {
	var (
		out       shipment.Shipment
		changed   bool
		changeErr error
	)
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		out, changed, changeErr = shipment.Shipment{}, false, nil
		cur, err := s.get(ctx, tx, `id = ?`, id, true)
		if err != nil {
			return err
		}
		next, ch, err := change(cur, s.now())
		if err != nil {
			out, changeErr = cur, err
			return err
		}
		if !ch {
			out = cur
			return nil // nothing written: the commit only ends the locking read
		}
		if err := s.save(ctx, tx, cur.Version, next); err != nil {
			return err
		}
		out, changed = next, true
		return nil
	})
	if err != nil {
		if changeErr != nil { // the last attempt failed in change: InTx returned its error
			return out, err
		}
		return shipment.Shipment{}, err
	}
	if changed {
		s.notify()
	}
	return out, nil
}

// save writes sh over the stored version prev and enqueues the event of its new status.
func (s *Store) save(ctx context.Context, tx *sqlx.Tx, prev int64, sh shipment.Shipment) error {
	var et eventbus.EventType[shipmentevents.Shipment]
	switch sh.Status {
	case shipment.Dispatched:
		et = shipmentevents.ShipmentDispatched
	case shipment.Delivered:
		et = shipmentevents.ShipmentDelivered
	case shipment.Cancelled:
		et = shipmentevents.ShipmentCancelled
	default:
		return fmt.Errorf("save shipment %s: no event for status %s", sh.ID, sh.Status)
	}
	res, err := tx.ExecContext(ctx, `UPDATE shipments SET status = ?, version = ?, dispatched_at = ?, delivered_at = ?, cancelled_at = ?
		WHERE id = ? AND version = ?`, string(sh.Status), sh.Version, sh.DispatchedAt, sh.DeliveredAt, sh.CancelledAt, sh.ID, prev)
	if err != nil {
		return fmt.Errorf("save shipment %s: %w", sh.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("save shipment %s: %w", sh.ID, shipment.ErrVersionMismatch)
	}
	return eventbus.Emit(ctx, tx, et, s.rep.Shipment(sh))
}

type shipmentRow struct {
	ID           string       `db:"id"`
	OrderID      string       `db:"order_id"`
	Status       string       `db:"status"`
	Name         string       `db:"name"`
	Line1        string       `db:"line1"`
	Line2        string       `db:"line2"`
	PostalCode   string       `db:"postal_code"`
	City         string       `db:"city"`
	Country      string       `db:"country"`
	Version      int64        `db:"version"`
	ScheduledAt  time.Time    `db:"scheduled_at"`
	DispatchedAt sql.NullTime `db:"dispatched_at"`
	DeliveredAt  sql.NullTime `db:"delivered_at"`
	CancelledAt  sql.NullTime `db:"cancelled_at"`
}

const shipmentColumns = `id, order_id, status, name, line1, line2, postal_code, city, country, version,
	scheduled_at, dispatched_at, delivered_at, cancelled_at`

func (r shipmentRow) shipment() shipment.Shipment {
	at := func(t sql.NullTime) *time.Time {
		if !t.Valid {
			return nil
		}
		u := t.Time.UTC()
		return &u
	}
	return shipment.Shipment{
		ID: r.ID, OrderID: r.OrderID, Status: shipment.Status(r.Status),
		Address: shipment.Address{Name: r.Name, Line1: r.Line1, Line2: r.Line2, PostalCode: r.PostalCode, City: r.City, Country: r.Country},
		Version: r.Version, ScheduledAt: r.ScheduledAt.UTC(),
		DispatchedAt: at(r.DispatchedAt), DeliveredAt: at(r.DeliveredAt), CancelledAt: at(r.CancelledAt),
	}
}

func (s *Store) get(ctx context.Context, q sqlx.QueryerContext, where string, arg any, lock bool) (shipment.Shipment, error) {
	query := `SELECT ` + shipmentColumns + ` FROM shipments WHERE ` + where
	if lock {
		query += ` FOR UPDATE`
	}
	var row shipmentRow
	err := sqlx.GetContext(ctx, q, &row, query, arg)
	if errors.Is(err, sql.ErrNoRows) {
		return shipment.Shipment{}, fmt.Errorf("shipment %v: %w", arg, shipment.ErrNotFound)
	}
	if err != nil {
		return shipment.Shipment{}, fmt.Errorf("shipment %v: %w", arg, err)
	}
	return row.shipment(), nil
}

// Shipment returns one shipment, or shipment.ErrNotFound.
func (s *Store) Shipment(ctx context.Context, id string) (shipment.Shipment, error) {
	return s.get(ctx, s.db, `id = ?`, id, false)
}

// Shipments returns the shipments matching f, newest first, limit items from offset, and the number
// of all matching ones.
func (s *Store) Shipments(ctx context.Context, f shipment.Filter, limit, offset int) ([]shipment.Shipment, int, error) {
	var where mysqldb.Filter
	where.Equal("order_id", f.OrderID)
	where.Equal("status", string(f.Status))
	if f.Customer != nil { // a customer's own only
		where.Cond(`order_id IN (SELECT order_id FROM orders WHERE customer_id = ? AND customer_id <> '')`, *f.Customer)
	}
	rows, total, err := mysqldb.Page[shipmentRow](ctx, s.db, shipmentColumns, "shipments", where, "scheduled_at DESC, id DESC", limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("shipments: %w", err)
	}
	out := make([]shipment.Shipment, len(rows))
	for i, r := range rows {
		out[i] = r.shipment()
	}
	return out, total, nil
}

func clampAddress(a shipment.Address) shipment.Address {
	return shipment.Address{
		Name: truncate(a.Name, 255), Line1: truncate(a.Line1, 255), Line2: truncate(a.Line2, 255),
		PostalCode: truncate(a.PostalCode, 32), City: truncate(a.City, 255), Country: truncate(a.Country, 8),
	}
}

// truncate cuts s to at most n bytes at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
