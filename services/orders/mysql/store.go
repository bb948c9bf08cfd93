// Package mysql stores sales.orders in MySQL/MariaDB: orders and their lines,
// the Idempotency-Key records of order placement, and the read models of
// customers and products that placement checks against.
//
// Every exported method of Store is one transaction, and the events it causes
// are written to the eventbus outbox (eventbus.Emit) in that same
// transaction. Where to look:
//
//   - events published: PlaceOrder (order_placed) and CancelOrder
//     (order_cancelled) in this file; order_confirmed, order_cancelled,
//     order_shipped and order_delivered in consume.go, by the saga handlers.
//   - events consumed: consume.go; Store.Subscribe registers every handler.
package mysql

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/services/orders/order"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the service's goose migrations, for the service kit
// (service.Spec.Migrations), which applies them with the bus tables.
var Migrations = mysqldb.Migrations(migrations, "migrations")

// Renderer turns an order into its REST model, HAL links included: the body
// of the API's answers and the entity of every order event. httpapi.Renderer
// is the one main uses.
type Renderer func(*order.Order) orderevents.Order

// Store is the orders database. It is safe for concurrent use.
type Store struct {
	db     *sqlx.DB
	render Renderer
	notify func()
	now    func() time.Time
}

// NewStore returns a Store on db. render builds event entities; notify, called
// after each commit that enqueued events from an API call, wakes the outbox
// relay (eventbus.Relay.Notify); it may be nil.
func NewStore(db *sqlx.DB, render Renderer, notify func()) (*Store, error) {
	if db == nil || render == nil {
		return nil, errors.New("mysql: New needs a database and a renderer")
	}
	if notify == nil {
		notify = func() {}
	}
	return &Store{db: db, render: render, notify: notify, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}, nil
}

// inTx runs fn in one transaction and commits it when fn returns nil,
// running it again on a deadlock or lock wait timeout (mysqldb.InTx): fn
// must assign, not accumulate, what it returns to its caller.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return mysqldb.InTx(ctx, s.db, fn)
}

// errKeyTaken: the Idempotency-Key row exists (or is being written by a
// concurrent request, which we waited for).
var errKeyTaken = errors.New("idempotency key taken")

// PlaceOrder places a new pending order and enqueues order_placed. It
// returns the order as placed (REST model): the body of the 201 answer.
//
// key is the request's Idempotency-Key ("" for none). A key seen before with
// the same input returns the first answer, identical, with replayed true, and
// places nothing; with a different input it returns an error wrapping
// order.ErrKeyReused. A concurrent request with the same key waits for the
// first to finish. Other errors: a *order.ValidationError (malformed input,
// unknown or inactive customer, unknown, retired or unpriced product), or a
// database error.
func (s *Store) PlaceOrder(ctx context.Context, in order.PlaceInput, key string) (placed orderevents.Order, replayed bool, err error) {
	if err := in.Validate(); err != nil {
		return orderevents.Order{}, false, err
	}
	hash := requestHash(in)
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		id := uuid.NewString()
		now := s.now()
		if key != "" {
			_, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (idem_key, request_hash, order_id, response, created_at)
				VALUES (?, ?, ?, '', ?)`, key, hash, id, now)
			if mysqldb.IsDuplicate(err) {
				return errKeyTaken
			}
			if err != nil {
				return fmt.Errorf("mysql: record idempotency key: %w", err)
			}
		}
		customer, err := loadCustomer(ctx, tx, in.CustomerID)
		if err != nil {
			return err
		}
		ids := make([]string, len(in.Lines))
		for i, l := range in.Lines {
			ids[i] = l.ProductID
		}
		products, err := loadProducts(ctx, tx, ids)
		if err != nil {
			return err
		}
		o, err := order.Place(id, in, customer, products, now)
		if err != nil {
			return err
		}
		if err := insertOrder(ctx, tx, o); err != nil {
			return err
		}
		entity := s.render(o)
		if key != "" {
			body, err := json.Marshal(entity)
			if err != nil {
				return fmt.Errorf("mysql: encode order: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET response = ? WHERE idem_key = ?`, body, key); err != nil {
				return fmt.Errorf("mysql: record idempotent response: %w", err)
			}
		}
		if err := eventbus.Emit(ctx, tx, orderevents.OrderPlaced, entity); err != nil {
			return err
		}
		placed = entity
		return nil
	})
	if errors.Is(err, errKeyTaken) {
		placed, err = s.replay(ctx, key, hash)
		return placed, err == nil, err
	}
	if err != nil {
		return orderevents.Order{}, false, err
	}
	s.notify()
	return placed, false, nil
}

// replay returns the first answer recorded for key, if hash matches its request.
func (s *Store) replay(ctx context.Context, key, hash string) (orderevents.Order, error) {
	var row struct {
		Hash     string `db:"request_hash"`
		Response []byte `db:"response"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT request_hash, response FROM idempotency_keys WHERE idem_key = ?`, key)
	if err != nil {
		return orderevents.Order{}, fmt.Errorf("mysql: read idempotency key: %w", err)
	}
	if row.Hash != hash {
		return orderevents.Order{}, fmt.Errorf("key %q: %w", key, order.ErrKeyReused)
	}
	var o orderevents.Order
	if err := json.Unmarshal(row.Response, &o); err != nil {
		return orderevents.Order{}, fmt.Errorf("mysql: decode idempotent response: %w", err)
	}
	return o, nil
}

// PurgeIdempotencyKeys forgets the Idempotency-Keys recorded before cutoff:
// a retry with such a key places a new order. It returns how many it forgot.
func (s *Store) PurgeIdempotencyKeys(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at < ?`, cutoff.UTC())
	if err != nil {
		return 0, fmt.Errorf("mysql: purge idempotency keys: %w", err)
	}
	return res.RowsAffected()
}

// ForgetIdempotencyKeys purges the Idempotency-Keys older than retention
// now and then every interval until ctx is done, then returns nil: an actor
// of the service's run group. A failed purge is logged and tried again at
// the next tick.
func (s *Store) ForgetIdempotencyKeys(ctx context.Context, retention, interval time.Duration, logger *slog.Logger) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		n, err := s.PurgeIdempotencyKeys(ctx, time.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			logger.ErrorContext(ctx, "purging idempotency keys", "error", err)
		case n > 0:
			logger.InfoContext(ctx, "idempotency keys forgotten", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// requestHash identifies a placement request by its content, whatever the
// JSON formatting of the body it came from.
func requestHash(in order.PlaceInput) string {
	b, _ := json.Marshal(in) // plain strings and ints: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Order returns the order with id, or an error wrapping order.ErrNotFound.
func (s *Store) Order(ctx context.Context, id string) (*order.Order, error) {
	return getOrder(ctx, s.db, id, false)
}

// Orders returns the orders matching f, newest first, and how many match in
// total.
func (s *Store) Orders(ctx context.Context, f order.Filter) ([]*order.Order, int, error) {
	var where []string
	var args []any
	if f.CustomerID != "" {
		where = append(where, "customer_id = ?")
		args = append(args, f.CustomerID)
	}
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, string(f.Status))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 {
		f.Limit = 20
	}
	var (
		orders []*order.Order
		total  int
	)
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		orders = nil // an attempt that deadlocked may have filled it
		if err := tx.GetContext(ctx, &total, "SELECT COUNT(*) FROM orders"+cond, args...); err != nil {
			return fmt.Errorf("mysql: count orders: %w", err)
		}
		var rows []orderRow
		q := "SELECT " + orderColumns + " FROM orders" + cond + " ORDER BY placed_at DESC, id DESC LIMIT ? OFFSET ?"
		if err := tx.SelectContext(ctx, &rows, q, append(args, f.Limit, f.Offset)...); err != nil {
			return fmt.Errorf("mysql: list orders: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		ids := make([]string, len(rows))
		for i, r := range rows {
			ids[i] = r.ID
		}
		lines, err := loadLines(ctx, tx, ids...)
		if err != nil {
			return err
		}
		for _, r := range rows {
			orders = append(orders, r.order(lines[r.ID]))
		}
		return nil
	})
	return orders, total, err
}

// CancelOrder cancels order id at its customer's request and enqueues
// order_cancelled (reason customer_requested). ifMatch, when not nil, is
// asked whether the current version may be changed (If-Match). Errors wrap
// order.ErrNotFound, order.ErrVersionMismatch or order.ErrNotCancellable.
// It returns the cancelled order. ifMatch may be called more than once: the
// transaction runs again on a deadlock.
func (s *Store) CancelOrder(ctx context.Context, id string, ifMatch func(version int64) bool) (*order.Order, error) {
	var o *order.Order
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if o, err = getOrder(ctx, tx, id, true); err != nil {
			return err
		}
		if ifMatch != nil && !ifMatch(int64(o.Version)) {
			return fmt.Errorf("order %s is at version %d: %w", id, o.Version, order.ErrVersionMismatch)
		}
		if err := o.Cancel(order.ReasonCustomerRequested, s.now()); err != nil {
			return err
		}
		if err := updateOrder(ctx, tx, o); err != nil {
			return err
		}
		return eventbus.Emit(ctx, tx, orderevents.OrderCancelled, s.render(o))
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	return o, nil
}

const orderColumns = `id, customer_id, status, cancellation_reason, total_amount, currency, payment_method_id,
	ship_name, ship_line1, ship_line2, ship_postal_code, ship_city, ship_country,
	payment_id, shipment_id, version, placed_at, updated_at`

type orderRow struct {
	ID                 string    `db:"id"`
	CustomerID         string    `db:"customer_id"`
	Status             string    `db:"status"`
	CancellationReason string    `db:"cancellation_reason"`
	TotalAmount        int64     `db:"total_amount"`
	Currency           string    `db:"currency"`
	PaymentMethodID    string    `db:"payment_method_id"`
	ShipName           string    `db:"ship_name"`
	ShipLine1          string    `db:"ship_line1"`
	ShipLine2          string    `db:"ship_line2"`
	ShipPostalCode     string    `db:"ship_postal_code"`
	ShipCity           string    `db:"ship_city"`
	ShipCountry        string    `db:"ship_country"`
	PaymentID          string    `db:"payment_id"`
	ShipmentID         string    `db:"shipment_id"`
	Version            int       `db:"version"`
	PlacedAt           time.Time `db:"placed_at"`
	UpdatedAt          time.Time `db:"updated_at"`
}

func (r orderRow) order(lines []order.Line) *order.Order {
	return &order.Order{
		ID:                 r.ID,
		CustomerID:         r.CustomerID,
		Lines:              lines,
		Total:              order.Money{Amount: r.TotalAmount, Currency: r.Currency},
		PaymentMethodID:    r.PaymentMethodID,
		ShippingAddress:    order.Address{Name: r.ShipName, Line1: r.ShipLine1, Line2: r.ShipLine2, PostalCode: r.ShipPostalCode, City: r.ShipCity, Country: r.ShipCountry},
		Status:             order.Status(r.Status),
		CancellationReason: order.Reason(r.CancellationReason),
		PaymentID:          r.PaymentID,
		ShipmentID:         r.ShipmentID,
		Version:            r.Version,
		PlacedAt:           r.PlacedAt.UTC(),
		UpdatedAt:          r.UpdatedAt.UTC(),
	}
}

// orderWithLinesQuery reads an order and its lines in one statement: one
// row per line, each carrying the order's columns. It has no ORDER BY:
// sorting on the joined table makes MariaDB build a temporary table and
// sort it (a GET took about twice the database CPU); getOrder sorts the
// few lines instead.
var orderWithLinesQuery = "SELECT " + qualified("o", orderColumns) + `,
	l.line_no AS line_no, l.product_id AS line_product_id, l.product_name AS line_product_name,
	l.quantity AS line_quantity, l.unit_amount AS line_unit_amount, l.currency AS line_currency
	FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id
	WHERE o.id = ?`

// orderLineRow is one row of orderWithLinesQuery. The line columns are NULL
// for an order without lines (there are none, but a LEFT JOIN allows it).
type orderLineRow struct {
	orderRow
	LineNo          sql.NullInt64  `db:"line_no"`
	LineProductID   sql.NullString `db:"line_product_id"`
	LineProductName sql.NullString `db:"line_product_name"`
	LineQuantity    sql.NullInt64  `db:"line_quantity"`
	LineUnitAmount  sql.NullInt64  `db:"line_unit_amount"`
	LineCurrency    sql.NullString `db:"line_currency"`
}

// getOrder reads one order with its lines in one statement, locking its
// row and its lines' rows when forUpdate. q is a transaction, or the pool
// for a plain read (one statement reads a consistent snapshot).
func getOrder(ctx context.Context, q sqlx.QueryerContext, id string, forUpdate bool) (*order.Order, error) {
	query := orderWithLinesQuery
	if forUpdate {
		query += " FOR UPDATE"
	}
	var rows []orderLineRow
	if err := sqlx.SelectContext(ctx, q, &rows, query, id); err != nil {
		return nil, fmt.Errorf("mysql: read order %s: %w", id, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("order %q: %w", id, order.ErrNotFound)
	}
	slices.SortFunc(rows, func(a, b orderLineRow) int { return cmp.Compare(a.LineNo.Int64, b.LineNo.Int64) })
	var lines []order.Line
	for _, r := range rows {
		if !r.LineProductID.Valid {
			continue
		}
		lines = append(lines, order.Line{
			ProductID: r.LineProductID.String, ProductName: r.LineProductName.String, Quantity: int(r.LineQuantity.Int64),
			UnitPrice: order.Money{Amount: r.LineUnitAmount.Int64, Currency: r.LineCurrency.String},
		})
	}
	return rows[0].order(lines), nil
}

// qualified prefixes every column of a comma-separated list with alias.
func qualified(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

type lineRow struct {
	OrderID     string `db:"order_id"`
	ProductID   string `db:"product_id"`
	ProductName string `db:"product_name"`
	Quantity    int    `db:"quantity"`
	UnitAmount  int64  `db:"unit_amount"`
	Currency    string `db:"currency"`
}

// loadLines returns the lines of the given orders, by order id, in line order.
func loadLines(ctx context.Context, tx *sqlx.Tx, orderIDs ...string) (map[string][]order.Line, error) {
	q, args, err := sqlx.In(`SELECT order_id, product_id, product_name, quantity, unit_amount, currency
		FROM order_lines WHERE order_id IN (?) ORDER BY order_id, line_no`, orderIDs)
	if err != nil {
		return nil, fmt.Errorf("mysql: lines query: %w", err)
	}
	var rows []lineRow
	if err := tx.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("mysql: read order lines: %w", err)
	}
	out := make(map[string][]order.Line, len(orderIDs))
	for _, r := range rows {
		out[r.OrderID] = append(out[r.OrderID], order.Line{
			ProductID: r.ProductID, ProductName: r.ProductName, Quantity: r.Quantity,
			UnitPrice: order.Money{Amount: r.UnitAmount, Currency: r.Currency},
		})
	}
	return out, nil
}

func insertOrder(ctx context.Context, tx *sqlx.Tx, o *order.Order) error {
	a := o.ShippingAddress
	_, err := tx.ExecContext(ctx, `INSERT INTO orders (`+orderColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		o.ID, o.CustomerID, string(o.Status), string(o.CancellationReason), o.Total.Amount, o.Total.Currency, o.PaymentMethodID,
		a.Name, a.Line1, a.Line2, a.PostalCode, a.City, a.Country,
		o.PaymentID, o.ShipmentID, o.Version, o.PlacedAt, o.UpdatedAt)
	if err != nil {
		return fmt.Errorf("mysql: insert order: %w", err)
	}
	if len(o.Lines) == 0 {
		return nil
	}
	// One statement for every line (at most order.MaxLines): one round trip.
	q := strings.Builder{}
	q.WriteString(`INSERT INTO order_lines (order_id, line_no, product_id, product_name, quantity, unit_amount, currency) VALUES `)
	args := make([]any, 0, 7*len(o.Lines))
	for i, l := range o.Lines {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		args = append(args, o.ID, i, l.ProductID, l.ProductName, l.Quantity, l.UnitPrice.Amount, l.UnitPrice.Currency)
	}
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("mysql: insert order lines: %w", err)
	}
	return nil
}

// updateOrder saves the mutable fields of o.
func updateOrder(ctx context.Context, tx *sqlx.Tx, o *order.Order) error {
	_, err := tx.ExecContext(ctx, `UPDATE orders SET status = ?, cancellation_reason = ?, payment_id = ?, shipment_id = ?,
		version = ?, updated_at = ? WHERE id = ?`,
		string(o.Status), string(o.CancellationReason), o.PaymentID, o.ShipmentID, o.Version, o.UpdatedAt, o.ID)
	if err != nil {
		return fmt.Errorf("mysql: update order %s: %w", o.ID, err)
	}
	return nil
}

// loadCustomer returns the read model of customer id, or nil when unknown.
func loadCustomer(ctx context.Context, tx *sqlx.Tx, id string) (*order.Customer, error) {
	var active bool
	err := tx.GetContext(ctx, &active, `SELECT active AND NOT removed FROM customers WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mysql: read customer: %w", err)
	}
	return &order.Customer{ID: id, Active: active}, nil
}

// loadProducts returns the read models of the known products among ids.
func loadProducts(ctx context.Context, tx *sqlx.Tx, ids []string) (map[string]order.Product, error) {
	q, args, err := sqlx.In(`SELECT id, name, active AND NOT retired AS active, price_amount, currency FROM products WHERE id IN (?)`, ids)
	if err != nil {
		return nil, fmt.Errorf("mysql: products query: %w", err)
	}
	var rows []struct {
		ID       string         `db:"id"`
		Name     string         `db:"name"`
		Active   bool           `db:"active"`
		Amount   sql.NullInt64  `db:"price_amount"`
		Currency sql.NullString `db:"currency"`
	}
	if err := tx.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("mysql: read products: %w", err)
	}
	out := make(map[string]order.Product, len(rows))
	for _, r := range rows {
		p := order.Product{ID: r.ID, Name: r.Name, Active: r.Active}
		if r.Amount.Valid && r.Currency.Valid {
			p.Price = &order.Money{Amount: r.Amount.Int64, Currency: r.Currency.String}
		}
		out[r.ID] = p
	}
	return out, nil
}
