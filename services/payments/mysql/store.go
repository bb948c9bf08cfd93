// Package mysql stores the payments domain in MySQL/MariaDB with sqlx, and writes the events each
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

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/services/payments/payment"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the service's goose migrations, for the service kit
// (service.Spec.Migrations), which applies them with the bus tables.
var Migrations = mysqldb.Migrations(migrations, "migrations")

// Representation renders a payment as its REST model, which is also the event entity. httpapi
// implements it; it must be safe for concurrent use.
type Representation interface {
	Payment(payment.Payment) paymentevents.Payment
}

// Store is the payments' storage. It is safe for concurrent use.
type Store struct {
	db  *sqlx.DB
	rep Representation
	now func() time.Time
}

// NewStore returns a Store on db; rep renders event entities.
func NewStore(db *sqlx.DB, rep Representation) (*Store, error) {
	if db == nil || rep == nil {
		return nil, errors.New("mysql: NewStore needs a db and a representation")
	}
	return &Store{db: db, rep: rep, now: func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }}, nil
}

// Now returns the store's clock, truncated to the milliseconds it keeps.
func (s *Store) Now() time.Time { return s.now() }

type orderRow struct {
	OrderID         string       `db:"order_id"`
	TotalAmount     int64        `db:"total_amount"`
	Currency        string       `db:"currency"`
	PaymentToken    string       `db:"payment_token"`
	PlacedAt        sql.NullTime `db:"placed_at"`
	StockReservedAt sql.NullTime `db:"stock_reserved_at"`
	CancelledAt     sql.NullTime `db:"cancelled_at"`
}

func (r orderRow) order() payment.Order {
	return payment.Order{
		ID: r.OrderID, Total: payment.Money{Amount: r.TotalAmount, Currency: r.Currency}, PaymentToken: r.PaymentToken,
		Placed: r.PlacedAt.Valid, StockReserved: r.StockReservedAt.Valid, Cancelled: r.CancelledAt.Valid,
	}
}

// RecordOrderPlaced records the amount and payment token of a placed order (a repeated or late
// order_placed changes neither the flags nor a first amount), and returns the order, locked until
// tx ends, with its payment if any.
func (s *Store) RecordOrderPlaced(ctx context.Context, tx *sqlx.Tx, o payment.Order) (payment.Order, *payment.Payment, error) {
	if !payment.ValidID(o.ID) {
		return payment.Order{}, nil, fmt.Errorf("order id %q: %w", truncate(o.ID, 120), payment.ErrInvalid)
	}
	now := s.now()
	placed := payment.Order{ID: o.ID, CustomerID: truncate(o.CustomerID, 100), Total: payment.Money{Amount: o.Total.Amount, Currency: truncate(o.Total.Currency, 16)},
		PaymentToken: truncate(o.PaymentToken, 255), Placed: true}
	res, err := tx.ExecContext(ctx, `INSERT INTO orders (order_id, customer_id, total_amount, currency, payment_token, placed_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE
			customer_id = IF(placed_at IS NULL, VALUES(customer_id), customer_id),
			total_amount = IF(placed_at IS NULL, VALUES(total_amount), total_amount),
			currency = IF(placed_at IS NULL, VALUES(currency), currency),
			payment_token = IF(placed_at IS NULL, VALUES(payment_token), payment_token),
			updated_at = IF(placed_at IS NULL, VALUES(updated_at), updated_at),
			placed_at = IFNULL(placed_at, VALUES(placed_at))`,
		placed.ID, placed.CustomerID, placed.Total.Amount, placed.Total.Currency, placed.PaymentToken, now, now)
	if err != nil {
		return payment.Order{}, nil, fmt.Errorf("record order %s placed: %w", o.ID, err)
	}
	if inserted, err := insertedRow(res); err != nil {
		return payment.Order{}, nil, fmt.Errorf("record order %s placed: %w", o.ID, err)
	} else if inserted {
		return placed, nil, nil
	}
	return s.readOrder(ctx, tx, o.ID)
}

// RecordStockReserved records that inventory reserved the order's stock, and returns the order,
// locked until tx ends, with its payment if any.
func (s *Store) RecordStockReserved(ctx context.Context, tx *sqlx.Tx, orderID string) (payment.Order, *payment.Payment, error) {
	return s.flag(ctx, tx, orderID, "stock_reserved_at")
}

// RecordOrderCancelled records that the order was cancelled, and returns the order, locked until tx
// ends, with its payment if any.
func (s *Store) RecordOrderCancelled(ctx context.Context, tx *sqlx.Tx, orderID string) (payment.Order, *payment.Payment, error) {
	return s.flag(ctx, tx, orderID, "cancelled_at")
}

// flag sets the timestamp column (a constant of this file) of an order once, adding the order when
// unknown.
func (s *Store) flag(ctx context.Context, tx *sqlx.Tx, orderID, column string) (payment.Order, *payment.Payment, error) {
	if !payment.ValidID(orderID) {
		return payment.Order{}, nil, fmt.Errorf("order id %q: %w", truncate(orderID, 120), payment.ErrInvalid)
	}
	now := s.now()
	res, err := tx.ExecContext(ctx, `INSERT INTO orders (order_id, `+column+`, updated_at) VALUES (?, ?, ?)
		ON DUPLICATE KEY UPDATE updated_at = IF(`+column+` IS NULL, VALUES(updated_at), updated_at),
			`+column+` = IFNULL(`+column+`, VALUES(`+column+`))`, orderID, now, now)
	if err != nil {
		return payment.Order{}, nil, fmt.Errorf("record order %s %s: %w", orderID, column, err)
	}
	if inserted, err := insertedRow(res); err != nil {
		return payment.Order{}, nil, fmt.Errorf("record order %s %s: %w", orderID, column, err)
	} else if inserted {
		return payment.Order{ID: orderID, StockReserved: column == "stock_reserved_at", Cancelled: column == "cancelled_at"}, nil, nil
	}
	return s.readOrder(ctx, tx, orderID)
}

// insertedRow reports whether the upsert (INSERT ... ON DUPLICATE KEY UPDATE) of an order's row
// that res is the result of inserted the row, from its affected rows: 1 when the row was inserted,
// 2 when an existing row changed, 0 when it kept its values. The driver must not set
// clientFoundRows (mysqldb.Open does not; the eventbus inbox relies on it too), else an unchanged
// row counts 1 like an insert. An inserted row, locked until the transaction ends, is all that is
// known of the order: none of its other events was handled, and it has no payment (a payment is
// added only after its order's row), so the caller need not read it back.
func insertedRow(res sql.Result) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n < 0 || n > 2 {
		return false, fmt.Errorf("upsert of one row affected %d rows", n)
	}
	return n == 1, nil
}

// readOrder returns the order, whose row tx has locked by the upsert of a Record method, with its
// payment if any, in one statement. It is a plain (consistent) read, not a locking one: a locking
// read of a payment that may not exist would lock a gap of payments_order and deadlock the charges
// of other orders. It still sees every change to this order: each was committed by a transaction
// that held the order's row lock before tx got it, and this read is the first of tx that reads a
// snapshot (HandleTx's inbox insert and the upsert read the latest rows under lock), so the
// snapshot is taken now. A consistent read earlier in tx would break this.
func (s *Store) readOrder(ctx context.Context, tx *sqlx.Tx, orderID string) (payment.Order, *payment.Payment, error) {
	var row orderPaymentRow
	err := tx.GetContext(ctx, &row, `SELECT o.order_id, o.total_amount, o.currency, o.payment_token, o.placed_at,
			o.stock_reserved_at, o.cancelled_at, p.id AS p_id, p.amount AS p_amount, p.currency AS p_currency,
			p.status AS p_status, p.reason AS p_reason, p.provider_reference AS p_provider_reference,
			p.refund_reference AS p_refund_reference, p.version AS p_version, p.created_at AS p_created_at,
			p.captured_at AS p_captured_at, p.declined_at AS p_declined_at, p.refunded_at AS p_refunded_at
		FROM orders o LEFT JOIN payments p ON p.order_id = o.order_id WHERE o.order_id = ?`, orderID)
	if err != nil {
		return payment.Order{}, nil, fmt.Errorf("order %s: %w", orderID, err)
	}
	return row.order(), row.payment(), nil
}

// orderPaymentRow is an order's row joined with its payment's, whose columns are all NULL when
// the order has no payment.
type orderPaymentRow struct {
	orderRow
	PID                sql.NullString `db:"p_id"`
	PAmount            sql.NullInt64  `db:"p_amount"`
	PCurrency          sql.NullString `db:"p_currency"`
	PStatus            sql.NullString `db:"p_status"`
	PReason            sql.NullString `db:"p_reason"`
	PProviderReference sql.NullString `db:"p_provider_reference"`
	PRefundReference   sql.NullString `db:"p_refund_reference"`
	PVersion           sql.NullInt64  `db:"p_version"`
	PCreatedAt         sql.NullTime   `db:"p_created_at"`
	PCapturedAt        sql.NullTime   `db:"p_captured_at"`
	PDeclinedAt        sql.NullTime   `db:"p_declined_at"`
	PRefundedAt        sql.NullTime   `db:"p_refunded_at"`
}

// payment returns the order's payment, or nil.
func (r orderPaymentRow) payment() *payment.Payment {
	if !r.PID.Valid {
		return nil
	}
	p := paymentRow{
		ID: r.PID.String, OrderID: r.OrderID, Amount: r.PAmount.Int64, Currency: r.PCurrency.String,
		Status: r.PStatus.String, Reason: r.PReason.String, ProviderReference: r.PProviderReference.String,
		RefundReference: r.PRefundReference.String, Version: r.PVersion.Int64, CreatedAt: r.PCreatedAt.Time,
		CapturedAt: r.PCapturedAt, DeclinedAt: r.PDeclinedAt, RefundedAt: r.PRefundedAt,
	}.payment()
	return &p
}

// AddPayment stores a new payment (captured or declined) and enqueues payment_captured or
// payment_declined, in tx.
func (s *Store) AddPayment(ctx context.Context, tx *sqlx.Tx, p payment.Payment) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO payments (id, order_id, amount, currency, status, reason, provider_reference,
		refund_reference, version, created_at, captured_at, declined_at, refunded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.OrderID, p.Amount.Amount, truncate(p.Amount.Currency, 16), string(p.Status), truncate(p.Reason, 64),
		truncate(p.ProviderReference, 100), truncate(p.RefundReference, 100), p.Version, p.CreatedAt, p.CapturedAt, p.DeclinedAt, p.RefundedAt)
	if err != nil {
		return fmt.Errorf("add payment of order %s: %w", p.OrderID, err)
	}
	et := paymentevents.PaymentCaptured
	if p.Status == payment.Declined {
		et = paymentevents.PaymentDeclined
	}
	return eventbus.Emit(ctx, tx, et, s.rep.Payment(p))
}

// SaveRefund stores a refunded payment (its version must be one more than the stored one) and
// enqueues payment_refunded, in tx.
func (s *Store) SaveRefund(ctx context.Context, tx *sqlx.Tx, p payment.Payment) error {
	if p.Status != payment.Refunded {
		return fmt.Errorf("save refund of %s: %w: status is %s", p.ID, payment.ErrInvalid, p.Status)
	}
	res, err := tx.ExecContext(ctx, `UPDATE payments SET status = ?, refund_reference = ?, refunded_at = ?, version = ?
		WHERE id = ? AND status = 'captured' AND version = ?`,
		string(p.Status), truncate(p.RefundReference, 100), p.RefundedAt, p.Version, p.ID, p.Version-1)
	if err != nil {
		return fmt.Errorf("save refund of %s: %w", p.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("save refund of %s: the payment changed meanwhile", p.ID)
	}
	return eventbus.Emit(ctx, tx, paymentevents.PaymentRefunded, s.rep.Payment(p))
}

type paymentRow struct {
	ID                string       `db:"id"`
	OrderID           string       `db:"order_id"`
	Amount            int64        `db:"amount"`
	Currency          string       `db:"currency"`
	Status            string       `db:"status"`
	Reason            string       `db:"reason"`
	ProviderReference string       `db:"provider_reference"`
	RefundReference   string       `db:"refund_reference"`
	Version           int64        `db:"version"`
	CreatedAt         time.Time    `db:"created_at"`
	CapturedAt        sql.NullTime `db:"captured_at"`
	DeclinedAt        sql.NullTime `db:"declined_at"`
	RefundedAt        sql.NullTime `db:"refunded_at"`
}

const paymentColumns = `id, order_id, amount, currency, status, reason, provider_reference, refund_reference, version,
	created_at, captured_at, declined_at, refunded_at`

func (r paymentRow) payment() payment.Payment {
	at := func(t sql.NullTime) *time.Time {
		if !t.Valid {
			return nil
		}
		u := t.Time.UTC()
		return &u
	}
	return payment.Payment{
		ID: r.ID, OrderID: r.OrderID, Amount: payment.Money{Amount: r.Amount, Currency: r.Currency},
		Status: payment.Status(r.Status), Reason: r.Reason, ProviderReference: r.ProviderReference,
		RefundReference: r.RefundReference, Version: r.Version, CreatedAt: r.CreatedAt.UTC(),
		CapturedAt: at(r.CapturedAt), DeclinedAt: at(r.DeclinedAt), RefundedAt: at(r.RefundedAt),
	}
}

func (s *Store) get(ctx context.Context, q sqlx.QueryerContext, where string, arg any) (payment.Payment, error) {
	var row paymentRow
	err := sqlx.GetContext(ctx, q, &row, `SELECT `+paymentColumns+` FROM payments WHERE `+where, arg)
	if errors.Is(err, sql.ErrNoRows) {
		return payment.Payment{}, fmt.Errorf("payment %v: %w", arg, payment.ErrNotFound)
	}
	if err != nil {
		return payment.Payment{}, fmt.Errorf("payment %v: %w", arg, err)
	}
	return row.payment(), nil
}

// Payment returns one payment, or payment.ErrNotFound.
func (s *Store) Payment(ctx context.Context, id string) (payment.Payment, error) {
	return s.get(ctx, s.db, `id = ?`, id)
}

// AddMethod stores a payment method.
func (s *Store) AddMethod(ctx context.Context, m payment.Method) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO payment_methods (id, customer_id, token, created_at) VALUES (?, ?, ?, ?)`,
		m.ID, m.CustomerID, m.Token, m.CreatedAt); err != nil {
		return fmt.Errorf("add payment method: %w", err)
	}
	return nil
}

type methodRow struct {
	ID         string    `db:"id"`
	CustomerID string    `db:"customer_id"`
	Token      string    `db:"token"`
	CreatedAt  time.Time `db:"created_at"`
}

// Method returns the payment method id, or payment.ErrNotFound.
func (s *Store) Method(ctx context.Context, id string) (payment.Method, error) {
	m, err := s.method(ctx, s.db, id)
	if err != nil {
		return payment.Method{}, err
	}
	if m == nil {
		return payment.Method{}, payment.ErrNotFound
	}
	return *m, nil
}

// Methods returns the payment methods, newest first, of customer when it is
// not nil (else every customer's), limit items from offset, and the number of
// all matching ones.
func (s *Store) Methods(ctx context.Context, customer *string, limit, offset int) ([]payment.Method, int, error) {
	where, args := "", []any{}
	if customer != nil {
		where, args = ` WHERE customer_id = ?`, append(args, *customer)
	}
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT COUNT(*) FROM payment_methods`+where, args...); err != nil {
		return nil, 0, fmt.Errorf("payment methods: %w", err)
	}
	var rows []methodRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT id, customer_id, token, created_at FROM payment_methods`+where+
		` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, append(args, limit, offset)...); err != nil {
		return nil, 0, fmt.Errorf("payment methods: %w", err)
	}
	out := make([]payment.Method, len(rows))
	for i, r := range rows {
		out[i] = payment.Method{ID: r.ID, CustomerID: r.CustomerID, Token: r.Token, CreatedAt: r.CreatedAt.UTC()}
	}
	return out, total, nil
}

// MethodTx returns the payment method id read in tx, or nil when there is none.
func (s *Store) MethodTx(ctx context.Context, tx *sqlx.Tx, id string) (*payment.Method, error) {
	return s.method(ctx, tx, id)
}

func (s *Store) method(ctx context.Context, q sqlx.QueryerContext, id string) (*payment.Method, error) {
	var r methodRow
	err := sqlx.GetContext(ctx, q, &r, `SELECT id, customer_id, token, created_at FROM payment_methods WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("payment method: %w", err)
	}
	return &payment.Method{ID: r.ID, CustomerID: r.CustomerID, Token: r.Token, CreatedAt: r.CreatedAt.UTC()}, nil
}

// CustomerOf returns the customer who placed the order orderID, "" when
// payments has not seen order_placed.
func (s *Store) CustomerOf(ctx context.Context, orderID string) (string, error) {
	var id string
	err := s.db.GetContext(ctx, &id, `SELECT customer_id FROM orders WHERE order_id = ?`, orderID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// Payments returns the payments matching f, newest first, limit items from offset, and the number of
// all matching ones.
func (s *Store) Payments(ctx context.Context, f payment.Filter, limit, offset int) ([]payment.Payment, int, error) {
	var where mysqldb.Filter
	where.Equal("order_id", f.OrderID)
	where.Equal("status", string(f.Status))
	if f.Customer != nil { // a customer's own only
		where.Cond(`order_id IN (SELECT order_id FROM orders WHERE customer_id = ? AND customer_id <> '')`, *f.Customer)
	}
	rows, total, err := mysqldb.Page[paymentRow](ctx, s.db, paymentColumns, "payments", where, "created_at DESC, id DESC", limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("payments: %w", err)
	}
	out := make([]payment.Payment, len(rows))
	for i, r := range rows {
		out[i] = r.payment()
	}
	return out, total, nil
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
