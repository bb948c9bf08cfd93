// Package mysql stores crm.notifications in MySQL/MariaDB.
//
// Every exported method of Store that changes something is one transaction,
// and the event it causes (notification_created) is written to the eventbus
// outbox (eventbus.Emit) in that same transaction; after the commit the store
// wakes the relay. The methods taking a *sqlx.Tx run in the caller's
// transaction (an eventbus.HandleTx handler's).
package mysql

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
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
var Migrations = func() fs.FS { sub, _ := fs.Sub(migrations, "migrations"); return sub }()

// Migrate applies the service's migrations and the eventbus tables to db, as
// the service kit does at start (for tests); logger may be nil.
func Migrate(ctx context.Context, db *sqlx.DB, logger *slog.Logger) error {
	if err := mysqldb.Migrate(ctx, db, Migrations, logger); err != nil {
		return err
	}
	if err := eventbus.Migrate(ctx, db); err != nil {
		return fmt.Errorf("eventbus tables: %w", err)
	}
	return nil
}

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
	ID        string    `db:"id"`
	Name      string    `db:"name"`
	Version   int64     `db:"version"`
	CreatedAt time.Time `db:"created_at"`
}

func (r row) notification() notification.Notification {
	return notification.Notification{ID: r.ID, Name: r.Name, Version: r.Version, CreatedAt: r.CreatedAt.UTC()}
}

const columns = "id, name, version, created_at"

// Create inserts w and enqueues notification_created, in one transaction (run
// again on a deadlock, mysqldb.InTx); the relay is woken after the commit.
func (s *Store) Create(ctx context.Context, w notification.Notification) error {
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO notifications (id, name, version, created_at) VALUES (?, ?, ?, ?)`,
			w.ID, w.Name, w.Version, w.CreatedAt)
		if err != nil {
			return err
		}
		return eventbus.Emit(ctx, tx, notificationevents.NotificationCreated, s.render(w))
	})
	if err != nil {
		return err
	}
	s.notify()
	return nil
}

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
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	var total int
	if err := tx.GetContext(ctx, &total, `SELECT COUNT(*) FROM notifications`); err != nil {
		return nil, 0, err
	}
	var rows []row
	if err := tx.SelectContext(ctx, &rows, `SELECT `+columns+` FROM notifications ORDER BY created_at, id LIMIT ? OFFSET ?`, f.Limit, f.Offset); err != nil {
		return nil, 0, err
	}
	out := make([]notification.Notification, len(rows))
	for i, r := range rows {
		out[i] = r.notification()
	}
	return out, total, nil
}

// RecordCustomer keeps version of the customer id (its name) in the read
// model, in the caller's transaction tx, unless a newer or equal version is
// there already: events may arrive late, twice or out of order. It reports
// whether it changed the read model.
func (s *Store) RecordCustomer(ctx context.Context, tx *sqlx.Tx, id, name string, version int64) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO customers (id, name, version) VALUES (?, ?, ?)
		ON DUPLICATE KEY UPDATE name = IF(VALUES(version) > version, VALUES(name), name),
		                        version = GREATEST(version, VALUES(version))`, id, name, version)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected() // 1 inserted, 2 updated, 0 unchanged
	return n > 0, err
}

// Customer returns the name and version of the customer id in the read
// model; found is false when no event about it arrived yet.
func (s *Store) Customer(ctx context.Context, id string) (name string, version int64, found bool, err error) {
	var r struct {
		Name    string `db:"name"`
		Version int64  `db:"version"`
	}
	err = s.db.GetContext(ctx, &r, `SELECT name, version FROM customers WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, false, nil
	}
	return r.Name, r.Version, err == nil, err
}
