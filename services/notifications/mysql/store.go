// Package mysql stores crm.notifications in MySQL/MariaDB: the notifications,
// the read model of customers and whose each order is.
//
// The methods taking a *sqlx.Tx run in the caller's transaction (an
// eventbus.HandleTx handler's: the inbox row and the notification commit
// together). The delivery methods (Claim, Sent, Failed, MarkNotSent,
// ReleaseStale) are one transaction each; Sent enqueues notification_sent
// (eventbus.Emit) in its transaction and wakes the relay after the commit.
package mysql

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/services/notifications/notification"
	"github.com/sagittarius-a/sagittarius/services/notifications/notificationevents"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the service's goose migrations, for the service kit
// (service.Spec.Migrations), which applies them with the bus tables.
var Migrations = mysqldb.Migrations(migrations, "migrations")

// Renderer turns a notification into its REST model, HAL links included: the
// entity of its events. httpapi.Renderer.Notification is the one main uses.
type Renderer func(notification.Notification) notificationevents.Notification

// Store is the notifications database. It is safe for concurrent use.
type Store struct {
	db     *sqlx.DB
	render Renderer
	notify func()
}

var _ notification.Store = (*Store)(nil)

// NewStore returns a Store on db. render builds event entities; notify is called
// after each commit that enqueued an event (eventbus.Relay.Notify) and may be nil.
func NewStore(db *sqlx.DB, render Renderer, notify func()) (*Store, error) {
	if db == nil || render == nil {
		return nil, errors.New("mysql: NewStore needs a database and a renderer")
	}
	if notify == nil {
		notify = func() {}
	}
	return &Store{db: db, render: render, notify: notify}, nil
}

type row struct {
	ID            string         `db:"id"`
	Kind          string         `db:"kind"`
	OrderID       string         `db:"order_id"`
	CustomerID    sql.NullString `db:"customer_id"`
	Channel       string         `db:"channel"`
	Recipient     sql.NullString `db:"recipient"`
	Subject       string         `db:"subject"`
	Text          string         `db:"text"`
	Status        string         `db:"status"`
	Reason        string         `db:"reason"`
	Attempts      int            `db:"attempts"`
	NextAttemptAt sql.NullTime   `db:"next_attempt_at"`
	EventID       string         `db:"event_id"`
	Version       int64          `db:"version"`
	CreatedAt     time.Time      `db:"created_at"`
	SentAt        sql.NullTime   `db:"sent_at"`
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

func (r row) notification() notification.Notification {
	return notification.Notification{
		ID: r.ID, Kind: notification.Kind(r.Kind), OrderID: r.OrderID, CustomerID: r.CustomerID.String,
		Channel: r.Channel, Recipient: r.Recipient.String, Subject: r.Subject, Text: r.Text,
		Status: notification.Status(r.Status), Reason: r.Reason, Attempts: r.Attempts,
		NextAttemptAt: timePtr(r.NextAttemptAt), EventID: r.EventID, Version: r.Version,
		CreatedAt: r.CreatedAt.UTC(), SentAt: timePtr(r.SentAt),
	}
}

const columns = "id, kind, order_id, customer_id, channel, recipient, subject, text, status, reason, attempts, next_attempt_at, event_id, version, created_at, sent_at"

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// Get returns the notification with id, or notification.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (notification.Notification, error) {
	var r row
	err := s.db.GetContext(ctx, &r, `SELECT `+columns+` FROM notifications WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return notification.Notification{}, notification.ErrNotFound
	}
	if err != nil {
		return notification.Notification{}, err
	}
	return r.notification(), nil
}

// List returns the notifications of f, oldest first, and their total count,
// from one snapshot (a read-only transaction).
func (s *Store) List(ctx context.Context, f notification.Filter) ([]notification.Notification, int, error) {
	var where mysqldb.Filter
	where.Equal("customer_id", f.CustomerID)
	where.Equal("status", string(f.Status))
	rows, total, err := mysqldb.Page[row](ctx, s.db, columns, "notifications", where, "created_at, id", f.Limit, f.Offset)
	if err != nil {
		return nil, 0, err
	}
	out := make([]notification.Notification, len(rows))
	for i, r := range rows {
		out[i] = r.notification()
	}
	return out, total, nil
}

// RecordCustomer keeps c in the read model unless a newer or equal version
// is there already (events arrive late, twice, out of order), then applies
// what is now known of the customer to its notifications waiting to be sent:
// the e-mail address as their recipient, or, once removed, not_sent. It
// runs in the caller's transaction tx and reports whether the read model
// changed.
func (s *Store) RecordCustomer(ctx context.Context, tx *sqlx.Tx, c notification.Customer) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO customers (id, email, name, removed, version) VALUES (?, ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE
			email = IF(VALUES(version) > version, VALUES(email), email),
			name = IF(VALUES(version) > version, VALUES(name), name),
			removed = IF(VALUES(version) > version, VALUES(removed), removed),
			version = GREATEST(version, VALUES(version))`, c.ID, c.Email, c.Name, c.Removed, c.Version)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected() // 1 inserted, 2 updated, 0 unchanged
	if err != nil || n == 0 {
		return false, err
	}
	return true, applyCustomer(ctx, tx, c.ID)
}

// applyCustomer gives the customer's pending notifications what the read
// model knows: its e-mail address, or not_sent once it was removed.
func applyCustomer(ctx context.Context, tx *sqlx.Tx, customerID string) error {
	var c struct {
		Email   string `db:"email"`
		Removed bool   `db:"removed"`
	}
	err := tx.GetContext(ctx, &c, `SELECT email, removed FROM customers WHERE id = ?`, customerID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.Removed {
		_, err = tx.ExecContext(ctx, `UPDATE notifications SET status = ?, reason = ?, version = version + 1
			WHERE customer_id = ? AND (status = ? OR (status = ? AND reason = ?))`,
			notification.StatusNotSent, notification.ReasonCustomerRemoved, customerID,
			notification.StatusPending, notification.StatusNotSent, notification.ReasonNoServer)
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE notifications SET recipient = ?, reason = IF(status = ?, '', reason), version = version + 1
		WHERE customer_id = ? AND status IN (?, ?, ?) AND NOT (recipient <=> ?)`,
		c.Email, notification.StatusPending, customerID,
		notification.StatusPending, notification.StatusNotSent, notification.StatusFailed, c.Email)
	return err
}

// RecordOrder remembers that order orderID is customerID's, and gives the
// order's notifications that did not know their customer (a refund that
// arrived first) the customer and what the read model knows of it. It runs
// in the caller's transaction tx.
func (s *Store) RecordOrder(ctx context.Context, tx *sqlx.Tx, orderID, customerID string) error {
	if orderID == "" || customerID == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO orders (id, customer_id) VALUES (?, ?) ON DUPLICATE KEY UPDATE id = id`, orderID, customerID); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE notifications SET customer_id = ?, version = version + 1 WHERE order_id = ? AND customer_id IS NULL`, customerID, orderID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	return applyCustomer(ctx, tx, customerID)
}

// Record stores n (ID, Kind, OrderID, CustomerID if the event names it,
// Subject, Text, EventID, CreatedAt) unless the order already has a
// notification of this kind: one per order and kind, never two. Its
// customer comes from the orders the service knows when the event does not
// name it, its recipient from the read model of customers; its status is
// pending (with ReasonNoRecipient while the address is unknown), or not_sent
// when the customer was removed. It runs in the caller's transaction tx and
// reports whether it stored n.
func (s *Store) Record(ctx context.Context, tx *sqlx.Tx, n notification.Notification) (bool, error) {
	// Locking reads: a concurrent transaction recording the order or the
	// customer either committed before (and is seen) or waits for this one
	// (and then finds the notification to complete).
	if n.CustomerID == "" {
		err := tx.GetContext(ctx, &n.CustomerID, `SELECT customer_id FROM orders WHERE id = ? LOCK IN SHARE MODE`, n.OrderID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, err
		}
	}
	n.Status, n.Reason, n.Recipient = notification.StatusPending, notification.ReasonNoRecipient, ""
	if n.CustomerID != "" {
		var c struct {
			Email   string `db:"email"`
			Removed bool   `db:"removed"`
		}
		err := tx.GetContext(ctx, &c, `SELECT email, removed FROM customers WHERE id = ? LOCK IN SHARE MODE`, n.CustomerID)
		switch {
		case err == nil && c.Removed:
			n.Status, n.Reason = notification.StatusNotSent, notification.ReasonCustomerRemoved
		case err == nil:
			n.Recipient, n.Reason = c.Email, ""
		case !errors.Is(err, sql.ErrNoRows):
			return false, err
		}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO notifications (id, kind, order_id, customer_id, channel, recipient, subject, text,
			status, reason, attempts, event_id, version, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 1, ?)
		ON DUPLICATE KEY UPDATE id = id`,
		n.ID, string(n.Kind), n.OrderID, nullString(n.CustomerID), notification.ChannelEmail, nullString(n.Recipient),
		n.Subject, n.Text, string(n.Status), n.Reason, n.EventID, n.CreatedAt.UTC())
	if err != nil {
		return false, err
	}
	stored, err := res.RowsAffected()
	return stored == 1, err
}

// Claim takes up to limit notifications to send now, in one transaction:
// those pending with a recipient, those failed whose next attempt is due,
// and those not sent for want of a server (a server is configured now). It
// marks them sending (attempts + 1) before it commits, so that no other
// sender takes them: each is sent at most once per claim.
func (s *Store) Claim(ctx context.Context, now time.Time, limit int) ([]notification.Notification, error) {
	var out []notification.Notification
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		out = nil
		var ids []string
		err := tx.SelectContext(ctx, &ids, `SELECT id FROM notifications
			WHERE recipient IS NOT NULL AND (status = ? OR (status = ? AND next_attempt_at <= ?) OR (status = ? AND reason = ?))
			ORDER BY created_at, id LIMIT ? FOR UPDATE SKIP LOCKED`,
			notification.StatusPending, notification.StatusFailed, now.UTC(), notification.StatusNotSent, notification.ReasonNoServer, limit)
		if err != nil || len(ids) == 0 {
			return err
		}
		q, args, err := sqlx.In(`UPDATE notifications SET status = ?, attempts = attempts + 1, claimed_at = ?, version = version + 1 WHERE id IN (?)`,
			notification.StatusSending, now.UTC(), ids)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		q, args, err = sqlx.In(`SELECT `+columns+` FROM notifications WHERE id IN (?) ORDER BY created_at, id`, ids)
		if err != nil {
			return err
		}
		var rows []row
		if err := tx.SelectContext(ctx, &rows, q, args...); err != nil {
			return err
		}
		for _, r := range rows {
			out = append(out, r.notification())
		}
		return nil
	})
	return out, err
}

// Sent records that the server accepted notification id at at and enqueues
// notification_sent, in one transaction; the relay is woken after it.
func (s *Store) Sent(ctx context.Context, id string, at time.Time) error {
	enqueued := false
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		enqueued = false
		res, err := tx.ExecContext(ctx, `UPDATE notifications SET status = ?, reason = '', sent_at = ?, next_attempt_at = NULL, version = version + 1
			WHERE id = ? AND status = ?`, notification.StatusSent, at.UTC(), id, notification.StatusSending)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		var r row
		if err := tx.GetContext(ctx, &r, `SELECT `+columns+` FROM notifications WHERE id = ?`, id); err != nil {
			return err
		}
		enqueued = true
		return eventbus.Emit(ctx, tx, notificationevents.NotificationSent, s.render(r.notification()))
	})
	if err == nil && enqueued {
		s.notify()
	}
	return err
}

// Failed records that sending notification id failed for reason; next is
// when to try again, nil for never.
func (s *Store) Failed(ctx context.Context, id, reason string, next *time.Time) error {
	var at sql.NullTime
	if next != nil {
		at = sql.NullTime{Time: next.UTC(), Valid: true}
	}
	return mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE notifications SET status = ?, reason = ?, next_attempt_at = ?, version = version + 1
			WHERE id = ? AND status = ?`, notification.StatusFailed, truncate(reason, 500), at, id, notification.StatusSending)
		return err
	})
}

// MarkNotSent records every pending notification with a recipient as
// not_sent for reason (no server is configured) and returns how many.
func (s *Store) MarkNotSent(ctx context.Context, reason string) (int64, error) {
	var n int64
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE notifications SET status = ?, reason = ?, version = version + 1
			WHERE status = ? AND recipient IS NOT NULL`, notification.StatusNotSent, reason, notification.StatusPending)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// ReleaseStale records notifications claimed before before and still
// sending (their sender stopped during the conversation) as failed, never
// to be tried again: they may have been delivered. It returns how many.
func (s *Store) ReleaseStale(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE notifications SET status = ?, reason = ?, next_attempt_at = NULL, version = version + 1
			WHERE status = ? AND claimed_at < ?`, notification.StatusFailed, notification.ReasonInterrupted, notification.StatusSending, before.UTC())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
