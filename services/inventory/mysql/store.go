// Package mysql stores the inventory domain in MySQL/MariaDB with sqlx, and writes the events each
// change causes into the eventbus outbox inside the same transaction.
//
// Exported methods without a tx parameter run in a transaction of their own. Methods that take a
// *sqlx.Tx run in the caller's transaction (an eventbus.HandleTx handler's), which commits them
// together with the inbox record of the event being handled.
package mysql

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/services/inventory/inventory"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the service's goose migrations, for the service kit
// (service.Spec.Migrations), which applies them with the bus tables.
var Migrations = mysqldb.Migrations(migrations, "migrations")

// Representation renders domain values as their REST models, which are also the event entities.
// httpapi implements it; it must be safe for concurrent use.
type Representation interface {
	Stock(inventory.StockItem) stockevents.Stock
	Reservation(inventory.Reservation) stockevents.Reservation
}

// Store is the inventory's storage. It is safe for concurrent use.
type Store struct {
	db     *sqlx.DB
	rep    Representation
	notify func()
	now    func() time.Time
	newID  func() string
}

// NewStore returns a Store on db. rep renders event entities; notify, when not nil, is called after a
// transaction that enqueued events has committed (eventbus.Relay.Notify).
func NewStore(db *sqlx.DB, rep Representation, notify func()) (*Store, error) {
	if db == nil || rep == nil {
		return nil, errors.New("mysql: NewStore needs a db and a representation")
	}
	if notify == nil {
		notify = func() {}
	}
	return &Store{
		db:     db,
		rep:    rep,
		notify: notify,
		now:    func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) },
		newID:  uuid.NewString,
	}, nil
}

// inTx runs f in a transaction of its own and commits it; the commit error is returned. On a
// deadlock or lock wait timeout the transaction runs again (mysqldb.InTx): f must assign, not
// accumulate, what it returns to its caller.
func (s *Store) inTx(ctx context.Context, f func(tx *sqlx.Tx) error) error {
	return mysqldb.InTx(ctx, s.db, f)
}

type stockRow struct {
	ProductID   string    `db:"product_id"`
	ProductName string    `db:"product_name"`
	Status      string    `db:"status"`
	Available   int64     `db:"available"`
	Reserved    int64     `db:"reserved"`
	Shipped     int64     `db:"shipped"`
	Replenished int64     `db:"replenished"`
	Version     int64     `db:"version"`
	UpdatedAt   time.Time `db:"updated_at"`
}

func (r stockRow) item() inventory.StockItem {
	return inventory.StockItem{
		ProductID: r.ProductID, ProductName: r.ProductName, Status: inventory.ProductStatus(r.Status),
		Available: r.Available, Reserved: r.Reserved, Shipped: r.Shipped, Replenished: r.Replenished,
		Version: r.Version, UpdatedAt: r.UpdatedAt.UTC(),
	}
}

const stockColumns = `product_id, product_name, status, available, reserved, shipped, replenished, version, updated_at`

// StockItem returns the stock of a product, or inventory.ErrNotFound when the product is unknown.
func (s *Store) StockItem(ctx context.Context, productID string) (inventory.StockItem, error) {
	var row stockRow
	err := s.db.GetContext(ctx, &row, `SELECT `+stockColumns+` FROM stock_items WHERE product_id = ?`, productID)
	if errors.Is(err, sql.ErrNoRows) {
		return inventory.StockItem{}, fmt.Errorf("stock item %q: %w", productID, inventory.ErrNotFound)
	}
	if err != nil {
		return inventory.StockItem{}, fmt.Errorf("stock item %q: %w", productID, err)
	}
	return row.item(), nil
}

// StockItems returns the stock items matching f ordered by product id, limit items from offset, and
// the number of all matching items.
func (s *Store) StockItems(ctx context.Context, f inventory.StockFilter, limit, offset int) ([]inventory.StockItem, int, error) {
	where, args := "", []any{}
	if f.Status != "" {
		where, args = ` WHERE status = ?`, append(args, string(f.Status))
	}
	var items []inventory.StockItem
	var total int
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		items = nil // an attempt that deadlocked may have filled it
		if err := tx.GetContext(ctx, &total, `SELECT COUNT(*) FROM stock_items`+where, args...); err != nil {
			return err
		}
		var rows []stockRow
		if err := tx.SelectContext(ctx, &rows, `SELECT `+stockColumns+` FROM stock_items`+where+
			` ORDER BY product_id LIMIT ? OFFSET ?`, append(args, limit, offset)...); err != nil {
			return err
		}
		for _, r := range rows {
			items = append(items, r.item())
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("stock items: %w", err)
	}
	return items, total, nil
}

// Replenish adds quantity units to the available stock of a product, records the replenishment and
// enqueues stock_replenished, in one transaction. Errors: inventory.ErrNotFound (product unknown),
// inventory.ErrProductRetired, inventory.ErrInvalid (quantity).
func (s *Store) Replenish(ctx context.Context, productID string, quantity int64) (inventory.Replenishment, inventory.StockItem, error) {
	if err := inventory.ValidateReplenishment(quantity); err != nil {
		return inventory.Replenishment{}, inventory.StockItem{}, err
	}
	var rep inventory.Replenishment
	var item inventory.StockItem
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var row stockRow
		err := tx.GetContext(ctx, &row, `SELECT `+stockColumns+` FROM stock_items WHERE product_id = ? FOR UPDATE`, productID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("product %q: %w", productID, inventory.ErrNotFound)
		}
		if err != nil {
			return err
		}
		item, err = row.item().Replenish(quantity)
		if err != nil {
			return err
		}
		now := s.now()
		item.UpdatedAt = now
		if _, err := tx.ExecContext(ctx, `UPDATE stock_items SET available = ?, replenished = ?, version = ?, updated_at = ? WHERE product_id = ?`,
			item.Available, item.Replenished, item.Version, now, productID); err != nil {
			return err
		}
		rep = inventory.Replenishment{ID: s.newID(), ProductID: productID, Quantity: quantity, CreatedAt: now}
		if _, err := tx.ExecContext(ctx, `INSERT INTO replenishments (id, product_id, quantity, created_at) VALUES (?, ?, ?, ?)`,
			rep.ID, rep.ProductID, rep.Quantity, rep.CreatedAt); err != nil {
			return err
		}
		return eventbus.Emit(ctx, tx, stockevents.StockReplenished, s.rep.Stock(item))
	})
	if err != nil {
		return inventory.Replenishment{}, inventory.StockItem{}, fmt.Errorf("replenish %q: %w", productID, err)
	}
	s.notify()
	return rep, item, nil
}

type replenishmentRow struct {
	ID        string    `db:"id"`
	ProductID string    `db:"product_id"`
	Quantity  int64     `db:"quantity"`
	CreatedAt time.Time `db:"created_at"`
}

func (r replenishmentRow) replenishment() inventory.Replenishment {
	return inventory.Replenishment{ID: r.ID, ProductID: r.ProductID, Quantity: r.Quantity, CreatedAt: r.CreatedAt.UTC()}
}

// Replenishment returns one replenishment, or inventory.ErrNotFound.
func (s *Store) Replenishment(ctx context.Context, id string) (inventory.Replenishment, error) {
	var row replenishmentRow
	err := s.db.GetContext(ctx, &row, `SELECT id, product_id, quantity, created_at FROM replenishments WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return inventory.Replenishment{}, fmt.Errorf("replenishment %q: %w", id, inventory.ErrNotFound)
	}
	if err != nil {
		return inventory.Replenishment{}, fmt.Errorf("replenishment %q: %w", id, err)
	}
	return row.replenishment(), nil
}

// Replenishments returns the replenishments, of one product when productID is not empty, newest
// first, limit items from offset, and the number of all matching ones.
func (s *Store) Replenishments(ctx context.Context, productID string, limit, offset int) ([]inventory.Replenishment, int, error) {
	where, args := "", []any{}
	if productID != "" {
		where, args = ` WHERE product_id = ?`, append(args, productID)
	}
	var out []inventory.Replenishment
	var total int
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		out = nil // an attempt that deadlocked may have filled it
		if err := tx.GetContext(ctx, &total, `SELECT COUNT(*) FROM replenishments`+where, args...); err != nil {
			return err
		}
		var rows []replenishmentRow
		if err := tx.SelectContext(ctx, &rows, `SELECT id, product_id, quantity, created_at FROM replenishments`+where+
			` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, append(args, limit, offset)...); err != nil {
			return err
		}
		for _, r := range rows {
			out = append(out, r.replenishment())
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("replenishments: %w", err)
	}
	return out, total, nil
}

// AddProduct records a product announced by the catalog with zero stock. For a product already known
// only the name changes: a product retired earlier stays retired (events may arrive out of order).
func (s *Store) AddProduct(ctx context.Context, tx *sqlx.Tx, productID, name string) error {
	return s.upsertProduct(ctx, tx, productID, name, inventory.ProductActive)
}

// RenameProduct records a product's new name; an unknown product is added as by AddProduct.
func (s *Store) RenameProduct(ctx context.Context, tx *sqlx.Tx, productID, name string) error {
	return s.upsertProduct(ctx, tx, productID, name, inventory.ProductActive)
}

// RetireProduct marks a product retired, adding it when unknown (so that a late product_added
// cannot make it active). Its stock is kept and can still be reserved and released.
func (s *Store) RetireProduct(ctx context.Context, tx *sqlx.Tx, productID, name string) error {
	return s.upsertProduct(ctx, tx, productID, name, inventory.ProductRetired)
}

func (s *Store) upsertProduct(ctx context.Context, tx *sqlx.Tx, productID, name string, status inventory.ProductStatus) error {
	if !inventory.ValidID(productID) {
		return fmt.Errorf("product id %q: %w", productID, inventory.ErrInvalid)
	}
	name = truncate(name, 255)
	now := s.now()
	// An existing row keeps its status unless the new status is retired; the name follows the
	// latest event that carries one.
	_, err := tx.ExecContext(ctx, `INSERT INTO stock_items (product_id, product_name, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE
			version = IF((VALUES(product_name) <> '' AND VALUES(product_name) <> product_name) OR (VALUES(status) = 'retired' AND status <> 'retired'), version + 1, version),
			updated_at = IF((VALUES(product_name) <> '' AND VALUES(product_name) <> product_name) OR (VALUES(status) = 'retired' AND status <> 'retired'), VALUES(updated_at), updated_at),
			product_name = IF(VALUES(product_name) <> '', VALUES(product_name), product_name),
			status = IF(VALUES(status) = 'retired', 'retired', status)`,
		productID, name, string(status), now, now)
	if err != nil {
		return fmt.Errorf("product %q: %w", productID, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut at a rune boundary.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// markOrder records in tx that the order's event of column (placed_at, cancelled_at or shipped_at, a constant
// of this file) was handled at now, unless it was before, and locks the order's row until tx ends,
// so that the handlers of one order's events run one after the other. It reports what the upsert
// did, from its affected rows: rowInserted when the order was unknown, rowChanged when the row
// existed without column (only the order's other event was handled), rowUnchanged when column was
// already set (the event was handled before). The driver must not set clientFoundRows (mysqldb.Open
// does not; the eventbus inbox relies on it too), else an unchanged row counts 1 like an insert.
func markOrder(ctx context.Context, tx *sqlx.Tx, orderID, column string, now time.Time) (upsert, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO orders (order_id, `+column+`) VALUES (?, ?)
		ON DUPLICATE KEY UPDATE `+column+` = IFNULL(`+column+`, VALUES(`+column+`))`, orderID, now)
	if err != nil {
		return 0, fmt.Errorf("order %q: %w", orderID, err)
	}
	u, err := upsertResult(res)
	if err != nil {
		return 0, fmt.Errorf("order %q: %w", orderID, err)
	}
	return u, nil
}

// upsert is what an INSERT ... ON DUPLICATE KEY UPDATE of one row did: its number of affected rows.
type upsert int64

const (
	rowUnchanged upsert = 0 // the row existed and kept its values
	rowInserted  upsert = 1 // the row was inserted
	rowChanged   upsert = 2 // the row existed and was changed
)

func upsertResult(res sql.Result) (upsert, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if u := upsert(n); u == rowUnchanged || u == rowInserted || u == rowChanged {
		return u, nil
	}
	return 0, fmt.Errorf("upsert of one row affected %d rows", n)
}

// orderFlag reads a boolean expression over the order's row, which tx has locked already (markOrder).
func orderFlag(ctx context.Context, tx *sqlx.Tx, orderID, expr string) (bool, error) {
	var v bool
	if err := tx.QueryRowxContext(ctx, `SELECT `+expr+` FROM orders WHERE order_id = ? FOR UPDATE`, orderID).Scan(&v); err != nil {
		return false, fmt.Errorf("order %q: %w", orderID, err)
	}
	return v, nil
}

// ReserveStock handles an order placed with lines, in the caller's transaction: it locks the stock
// rows of the order's products (in product order, so concurrent orders cannot deadlock on them),
// reserves every line or none, records the reservation and enqueues stock_reserved or
// stock_reservation_rejected. An order already placed (its reservation exists) changes nothing and
// returns the existing reservation with created false. An order cancelled before it was placed, and
// an order whose lines break the rules, gets a rejected reservation.
func (s *Store) ReserveStock(ctx context.Context, tx *sqlx.Tx, orderID string, lines []inventory.Line) (r inventory.Reservation, created bool, err error) {
	if !inventory.ValidID(orderID) {
		// Nothing can be stored under this id; the event is dead-lettered by the bus.
		return inventory.Reservation{}, false, fmt.Errorf("order id %q: %w", truncate(orderID, 120), inventory.ErrInvalid)
	}
	now := s.now()
	u, err := markOrder(ctx, tx, orderID, "placed_at", now)
	if err != nil {
		return inventory.Reservation{}, false, err
	}
	cancelled := false
	switch u {
	case rowUnchanged: // placed before: its reservation exists
		existing, err := s.reservation(ctx, tx, orderID, true)
		return existing, false, err
	case rowChanged: // known, not placed: its order_cancelled (or a hand-made shipment_dispatched) came first
		if cancelled, err = orderFlag(ctx, tx, orderID, `cancelled_at IS NOT NULL`); err != nil {
			return inventory.Reservation{}, false, err
		}
	}
	merged, mergeErr := inventory.MergeLines(lines)
	switch {
	case cancelled:
		r = inventory.Reject(orderID, validLines(merged, lines), inventory.ReasonOrderCancelled, now)
	case mergeErr != nil:
		r = inventory.Reject(orderID, validLines(merged, lines), inventory.ReasonInvalidOrder, now)
	default:
		available, err := s.lockStock(ctx, tx, merged)
		if err != nil {
			return inventory.Reservation{}, false, fmt.Errorf("reserve %q: %w", orderID, err)
		}
		r = inventory.Reserve(orderID, merged, available, now)
		if r.Status == inventory.Held {
			if err := moveStock(ctx, tx, merged, reserveStock, now); err != nil {
				return inventory.Reservation{}, false, fmt.Errorf("reserve %q: %w", orderID, err)
			}
		}
	}
	if err := s.insertReservation(ctx, tx, r); err != nil {
		return inventory.Reservation{}, false, fmt.Errorf("reserve %q: %w", orderID, err)
	}
	et := stockevents.StockReserved
	if r.Status == inventory.Rejected {
		et = stockevents.StockReservationRejected
	}
	if err := eventbus.Emit(ctx, tx, et, s.rep.Reservation(r)); err != nil {
		return inventory.Reservation{}, false, fmt.Errorf("reserve %q: %w", orderID, err)
	}
	return r, true, nil
}

// validLines returns merged when it is valid, else the lines of the order that can be stored.
func validLines(merged, lines []inventory.Line) []inventory.Line {
	if merged != nil {
		return merged
	}
	var out []inventory.Line
	seen := map[string]bool{}
	for _, l := range lines {
		if inventory.ValidID(l.ProductID) && !seen[l.ProductID] {
			seen[l.ProductID] = true
			out = append(out, l)
		}
	}
	return out
}

// lockStock locks the stock rows of lines' products (sorted by product id) and returns their
// available quantities; unknown products are absent from the map.
func (s *Store) lockStock(ctx context.Context, tx *sqlx.Tx, lines []inventory.Line) (map[string]int64, error) {
	ids := make([]any, len(lines))
	for i, l := range lines {
		ids[i] = l.ProductID
	}
	q := `SELECT product_id, available FROM stock_items WHERE product_id IN (?` + strings.Repeat(",?", len(ids)-1) +
		`) ORDER BY product_id FOR UPDATE`
	rows, err := tx.QueryxContext(ctx, q, ids...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	available := make(map[string]int64, len(lines))
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		available[id] = n
	}
	return available, rows.Err()
}

// stockMove says which way moveStock moves quantities.
type stockMove int

const (
	reserveStock stockMove = iota // from available to reserved
	releaseStock                  // from reserved back to available
	shipStock                     // from reserved to shipped: the goods left
)

// moveStock moves the quantity of every line (one line per product; their rows locked by lockStock)
// between available, reserved and shipped, in one statement for all lines. A reservation changes no row
// whose available stock would go below zero, and fewer rows changed than there are lines fail the
// move (the caller's transaction then rolls back): with the rows locked and checked by
// inventory.Reserve neither can happen, but stock is never oversold if it does.
func moveStock(ctx context.Context, tx *sqlx.Tx, lines []inventory.Line, move stockMove, now time.Time) error {
	if len(lines) == 0 {
		return nil
	}
	// qty is the quantity of the row's product: CASE product_id WHEN ? THEN ? ... END.
	qty := "CASE product_id" + strings.Repeat(" WHEN ? THEN ?", len(lines)) + " END"
	qtyArgs := make([]any, 0, 2*len(lines))
	ids := make([]any, 0, len(lines))
	for _, l := range lines {
		qtyArgs = append(qtyArgs, l.ProductID, l.Quantity)
		ids = append(ids, l.ProductID)
	}
	in := "(?" + strings.Repeat(", ?", len(ids)-1) + ")"
	var q string
	var args []any
	switch move {
	case reserveStock:
		q = `UPDATE stock_items SET available = available - ` + qty + `, reserved = reserved + ` + qty + `,
			version = version + 1, updated_at = ? WHERE product_id IN ` + in + ` AND available >= ` + qty
		args = slices.Concat(qtyArgs, qtyArgs, []any{now}, ids, qtyArgs)
	case releaseStock:
		q = `UPDATE stock_items SET available = available + ` + qty + `, reserved = reserved - ` + qty + `,
			version = version + 1, updated_at = ? WHERE product_id IN ` + in
		args = slices.Concat(qtyArgs, qtyArgs, []any{now}, ids)
	case shipStock:
		q = `UPDATE stock_items SET reserved = reserved - ` + qty + `, shipped = shipped + ` + qty + `,
			version = version + 1, updated_at = ? WHERE product_id IN ` + in + ` AND reserved >= ` + qty
		args = slices.Concat(qtyArgs, qtyArgs, []any{now}, ids, qtyArgs)
	default:
		return fmt.Errorf("unknown stock move %d", move)
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != int64(len(lines)) {
		return fmt.Errorf("stock of %d of %d products changed under lock", int64(len(lines))-n, len(lines))
	}
	return nil
}

func (s *Store) insertReservation(ctx context.Context, tx *sqlx.Tx, r inventory.Reservation) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO reservations (order_id, status, reason, created_at, released_at) VALUES (?, ?, ?, ?, ?)`,
		r.OrderID, string(r.Status), r.Reason, r.CreatedAt, r.ReleasedAt); err != nil {
		return err
	}
	short := map[string]int64{}
	for _, sh := range r.Shortages {
		short[sh.ProductID] = sh.Available
	}
	if len(r.Lines) == 0 {
		return nil
	}
	// One statement for every line: one round trip.
	q := strings.Builder{}
	q.WriteString(`INSERT INTO reservation_lines (order_id, product_id, quantity, available) VALUES `)
	args := make([]any, 0, 4*len(r.Lines))
	for i, l := range r.Lines {
		var avail *int64
		if a, ok := short[l.ProductID]; ok {
			avail = &a
		}
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?)")
		args = append(args, r.OrderID, l.ProductID, l.Quantity, avail)
	}
	_, err := tx.ExecContext(ctx, q.String(), args...)
	return err
}

// ReleaseStock handles an order cancelled, in the caller's transaction. A held reservation is
// released once: its quantities go back to available and stock_released is enqueued (released true).
// A rejected or already released reservation changes nothing. An order without reservation is
// remembered as cancelled, so that its late order_placed is rejected.
func (s *Store) ReleaseStock(ctx context.Context, tx *sqlx.Tx, orderID string) (r inventory.Reservation, released bool, err error) {
	if !inventory.ValidID(orderID) {
		return inventory.Reservation{}, false, fmt.Errorf("order id %q: %w", truncate(orderID, 120), inventory.ErrInvalid)
	}
	now := s.now()
	u, err := markOrder(ctx, tx, orderID, "cancelled_at", now)
	if err != nil {
		return inventory.Reservation{}, false, err
	}
	placed := false
	if u != rowInserted { // an order unknown until now was not placed
		if placed, err = orderFlag(ctx, tx, orderID, `placed_at IS NOT NULL`); err != nil {
			return inventory.Reservation{}, false, err
		}
	}
	if !placed {
		// Remembered: the late order_placed gets a rejected reservation.
		return inventory.Reservation{}, false, nil
	}
	r, err = s.reservation(ctx, tx, orderID, true)
	if err != nil {
		return inventory.Reservation{}, false, err
	}
	r, ok := r.Release(now)
	if !ok {
		return r, false, nil
	}
	if _, err := s.lockStock(ctx, tx, r.Lines); err != nil {
		return inventory.Reservation{}, false, fmt.Errorf("release %q: %w", orderID, err)
	}
	if err := moveStock(ctx, tx, r.Lines, releaseStock, now); err != nil {
		return inventory.Reservation{}, false, fmt.Errorf("release %q: %w", orderID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE reservations SET status = ?, released_at = ? WHERE order_id = ?`,
		string(r.Status), r.ReleasedAt, orderID); err != nil {
		return inventory.Reservation{}, false, fmt.Errorf("release %q: %w", orderID, err)
	}
	if err := eventbus.Emit(ctx, tx, stockevents.StockReleased, s.rep.Reservation(r)); err != nil {
		return inventory.Reservation{}, false, fmt.Errorf("release %q: %w", orderID, err)
	}
	return r, true, nil
}

// ShipStock handles a shipment dispatched for an order, in the caller's transaction: the order's held
// reservation is shipped once, its quantities leave the stock for good (reserved -> shipped) and
// stock_shipped is enqueued (shipped true). A released, rejected or already shipped reservation
// changes nothing. A dispatch seen before the order was placed is remembered (orders.shipped_at) and
// changes nothing: inventory published the order's stock_reserved before any shipment can exist, so
// that only happens to a hand-made event.
func (s *Store) ShipStock(ctx context.Context, tx *sqlx.Tx, orderID string) (r inventory.Reservation, shipped bool, err error) {
	if !inventory.ValidID(orderID) {
		return inventory.Reservation{}, false, fmt.Errorf("order id %q: %w", truncate(orderID, 120), inventory.ErrInvalid)
	}
	now := s.now()
	u, err := markOrder(ctx, tx, orderID, "shipped_at", now)
	if err != nil {
		return inventory.Reservation{}, false, err
	}
	placed := false
	if u != rowInserted {
		if placed, err = orderFlag(ctx, tx, orderID, `placed_at IS NOT NULL`); err != nil {
			return inventory.Reservation{}, false, err
		}
	}
	if !placed {
		return inventory.Reservation{}, false, nil
	}
	r, err = s.reservation(ctx, tx, orderID, true)
	if err != nil {
		return inventory.Reservation{}, false, err
	}
	r, ok := r.Ship(now)
	if !ok {
		return r, false, nil
	}
	if _, err := s.lockStock(ctx, tx, r.Lines); err != nil {
		return inventory.Reservation{}, false, fmt.Errorf("ship %q: %w", orderID, err)
	}
	if err := moveStock(ctx, tx, r.Lines, shipStock, now); err != nil {
		return inventory.Reservation{}, false, fmt.Errorf("ship %q: %w", orderID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE reservations SET status = ?, shipped_at = ? WHERE order_id = ?`,
		string(r.Status), r.ShippedAt, orderID); err != nil {
		return inventory.Reservation{}, false, fmt.Errorf("ship %q: %w", orderID, err)
	}
	if err := eventbus.Emit(ctx, tx, stockevents.StockShipped, s.rep.Reservation(r)); err != nil {
		return inventory.Reservation{}, false, fmt.Errorf("ship %q: %w", orderID, err)
	}
	return r, true, nil
}

type reservationRow struct {
	OrderID    string       `db:"order_id"`
	Status     string       `db:"status"`
	Reason     string       `db:"reason"`
	CreatedAt  time.Time    `db:"created_at"`
	ReleasedAt sql.NullTime `db:"released_at"`
	ShippedAt  sql.NullTime `db:"shipped_at"`
}

type lineRow struct {
	OrderID   string        `db:"order_id"`
	ProductID string        `db:"product_id"`
	Quantity  int64         `db:"quantity"`
	Available sql.NullInt64 `db:"available"`
}

// Reservation returns the reservation of an order, or inventory.ErrNotFound.
func (s *Store) Reservation(ctx context.Context, orderID string) (inventory.Reservation, error) {
	var r inventory.Reservation
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		r, err = s.reservation(ctx, tx, orderID, false)
		return err
	})
	return r, err
}

func (s *Store) reservation(ctx context.Context, tx *sqlx.Tx, orderID string, lock bool) (inventory.Reservation, error) {
	q := `SELECT order_id, status, reason, created_at, released_at, shipped_at FROM reservations WHERE order_id = ?`
	if lock {
		q += ` FOR UPDATE`
	}
	var row reservationRow
	err := tx.GetContext(ctx, &row, q, orderID)
	if errors.Is(err, sql.ErrNoRows) {
		return inventory.Reservation{}, fmt.Errorf("reservation %q: %w", orderID, inventory.ErrNotFound)
	}
	if err != nil {
		return inventory.Reservation{}, fmt.Errorf("reservation %q: %w", orderID, err)
	}
	rs, err := s.withLines(ctx, tx, []reservationRow{row})
	if err != nil {
		return inventory.Reservation{}, err
	}
	return rs[0], nil
}

func (s *Store) withLines(ctx context.Context, tx *sqlx.Tx, rows []reservationRow) ([]inventory.Reservation, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	ids := make([]any, len(rows))
	for i, r := range rows {
		ids[i] = r.OrderID
	}
	var lines []lineRow
	if err := tx.SelectContext(ctx, &lines, `SELECT order_id, product_id, quantity, available FROM reservation_lines
		WHERE order_id IN (?`+strings.Repeat(",?", len(ids)-1)+`) ORDER BY order_id, product_id`, ids...); err != nil {
		return nil, fmt.Errorf("reservation lines: %w", err)
	}
	byOrder := map[string][]lineRow{}
	for _, l := range lines {
		byOrder[l.OrderID] = append(byOrder[l.OrderID], l)
	}
	out := make([]inventory.Reservation, len(rows))
	for i, row := range rows {
		r := inventory.Reservation{
			OrderID: row.OrderID, Status: inventory.ReservationStatus(row.Status), Reason: row.Reason,
			CreatedAt: row.CreatedAt.UTC(), Lines: []inventory.Line{},
		}
		if row.ReleasedAt.Valid {
			t := row.ReleasedAt.Time.UTC()
			r.ReleasedAt = &t
		}
		if row.ShippedAt.Valid {
			t := row.ShippedAt.Time.UTC()
			r.ShippedAt = &t
		}
		for _, l := range byOrder[row.OrderID] {
			r.Lines = append(r.Lines, inventory.Line{ProductID: l.ProductID, Quantity: l.Quantity})
			if l.Available.Valid {
				r.Shortages = append(r.Shortages, inventory.Shortage{ProductID: l.ProductID, Requested: l.Quantity, Available: l.Available.Int64})
			}
		}
		out[i] = r
	}
	return out, nil
}

// Reservations returns the reservations matching f, newest first, limit items from offset, and the
// number of all matching ones.
func (s *Store) Reservations(ctx context.Context, f inventory.ReservationFilter, limit, offset int) ([]inventory.Reservation, int, error) {
	var conds []string
	var args []any
	if f.Status != "" {
		conds, args = append(conds, `r.status = ?`), append(args, string(f.Status))
	}
	if f.ProductID != "" {
		conds, args = append(conds, `EXISTS (SELECT 1 FROM reservation_lines l WHERE l.order_id = r.order_id AND l.product_id = ?)`), append(args, f.ProductID)
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, ` AND `)
	}
	var out []inventory.Reservation
	var total int
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &total, `SELECT COUNT(*) FROM reservations r`+where, args...); err != nil {
			return err
		}
		var rows []reservationRow
		if err := tx.SelectContext(ctx, &rows, `SELECT r.order_id, r.status, r.reason, r.created_at, r.released_at, r.shipped_at FROM reservations r`+
			where+` ORDER BY r.created_at DESC, r.order_id DESC LIMIT ? OFFSET ?`, append(args, limit, offset)...); err != nil {
			return err
		}
		var err error
		out, err = s.withLines(ctx, tx, rows)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("reservations: %w", err)
	}
	return out, total, nil
}
