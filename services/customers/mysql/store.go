// Package mysql stores crm.customers in MySQL/MariaDB.
//
// Every exported method of Store is one transaction, and the event it causes
// (customer_registered, customer_updated, customer_removed) is written to the
// eventbus outbox (eventbus.Emit) in that same transaction; after the
// commit the store wakes the relay.
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
	"github.com/sagittarius-a/sagittarius/services/customers/customer"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the service's goose migrations, for the service kit
// (service.Spec.Migrations), which applies them with the bus tables.
var Migrations = mysqldb.Migrations(migrations, "migrations")

// Renderer turns a customer into its REST model, HAL links included: the
// entity of every customer event. httpapi.Renderer.Customer is the one main uses.
type Renderer func(customer.Customer) customerevents.Customer

// Store is the customers database. It is safe for concurrent use.
type Store struct {
	db     *sqlx.DB
	render Renderer
	notify func()
	now    func() time.Time
}

var _ customer.Store = (*Store)(nil)

// NewStore returns a Store on db. render builds event entities; notify is called
// after each commit that enqueued an event (eventbus.Relay.Notify) and may be nil.
func NewStore(db *sqlx.DB, render Renderer, notify func()) (*Store, error) {
	if db == nil || render == nil {
		return nil, errors.New("mysql: New needs a database and a renderer")
	}
	if notify == nil {
		notify = func() {}
	}
	return &Store{db: db, render: render, notify: notify, now: time.Now}, nil
}

type row struct {
	ID           string    `db:"id"`
	Email        string    `db:"email"`
	Name         string    `db:"name"`
	Status       string    `db:"status"`
	Version      int64     `db:"version"`
	RegisteredAt time.Time `db:"registered_at"`
	UpdatedAt    time.Time `db:"updated_at"`
}

func (r row) customer() customer.Customer {
	return customer.Customer{
		ID: r.ID, Email: r.Email, Name: r.Name, Status: customer.Status(r.Status), Version: r.Version,
		RegisteredAt: r.RegisteredAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

const columns = "id, email, name, status, version, registered_at, updated_at"

// inTx runs fn in a transaction and commits it, running it again on a
// deadlock or lock wait timeout: fn must only assign what it reports to its
// caller. When the attempt that committed reports that it enqueued events,
// the relay is woken after the commit (mysqldb.InTxNotify).
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) (enqueued bool, err error)) error {
	return mysqldb.InTxNotify(ctx, s.db, s.notify, fn)
}

// Create inserts c and enqueues customer_registered.
func (s *Store) Create(ctx context.Context, c customer.Customer) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) (bool, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO customers (`+columns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Email, c.Name, string(c.Status), c.Version, c.RegisteredAt, c.UpdatedAt)
		if err != nil {
			return false, mapWriteErr(err)
		}
		return true, eventbus.Emit(ctx, tx, customerevents.CustomerRegistered, s.render(c))
	})
}

// CreateIfAbsentTx inserts c and enqueues customer_registered in tx (the
// transaction of a consumed event), unless a customer with c.ID exists:
// then it returns false and changes nothing. An email another customer has
// is customer.ErrEmailTaken.
func (s *Store) CreateIfAbsentTx(ctx context.Context, tx *sqlx.Tx, c customer.Customer) (bool, error) {
	var n int
	if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM customers WHERE id = ?`, c.ID); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO customers (`+columns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Email, c.Name, string(c.Status), c.Version, c.RegisteredAt, c.UpdatedAt); err != nil {
		return false, mapWriteErr(err)
	}
	return true, eventbus.Emit(ctx, tx, customerevents.CustomerRegistered, s.render(c))
}

// mapWriteErr turns a duplicate-key error into customer.ErrEmailTaken (email
// is the only unique key besides the generated id).
func mapWriteErr(err error) error {
	if mysqldb.IsDuplicate(err) {
		return customer.ErrEmailTaken
	}
	return err
}

// Get returns the customer with id, or customer.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (customer.Customer, error) {
	var r row
	err := s.db.GetContext(ctx, &r, `SELECT `+columns+` FROM customers WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return customer.Customer{}, customer.ErrNotFound
	}
	if err != nil {
		return customer.Customer{}, err
	}
	return r.customer(), nil
}

func lockRow(ctx context.Context, tx *sqlx.Tx, id string) (customer.Customer, error) {
	var r row
	err := tx.GetContext(ctx, &r, `SELECT `+columns+` FROM customers WHERE id = ? FOR UPDATE`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return customer.Customer{}, customer.ErrNotFound
	}
	if err != nil {
		return customer.Customer{}, err
	}
	return r.customer(), nil
}

// Update locks the customer row, applies change and, when it changed
// something, stores it and enqueues customer_updated. The transaction runs
// again on a deadlock, so change may be called more than once, each time
// with the row as then read.
func (s *Store) Update(ctx context.Context, id string, change func(c *customer.Customer) (bool, error)) (customer.Customer, error) {
	var out customer.Customer
	err := s.inTx(ctx, func(tx *sqlx.Tx) (bool, error) {
		c, err := lockRow(ctx, tx, id)
		if err != nil {
			return false, err
		}
		changed, err := change(&c)
		if err != nil {
			return false, err
		}
		out = c
		if !changed {
			return false, nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE customers SET email = ?, name = ?, status = ?, version = ?, updated_at = ? WHERE id = ?`,
			c.Email, c.Name, string(c.Status), c.Version, c.UpdatedAt, c.ID)
		if err != nil {
			return false, mapWriteErr(err)
		}
		return true, eventbus.Emit(ctx, tx, customerevents.CustomerUpdated, s.render(c))
	})
	return out, err
}

// Remove locks the customer row, asks check, deletes the row and enqueues
// customer_removed carrying the customer with status "removed" and the
// next version. check may be called more than once (see Update).
func (s *Store) Remove(ctx context.Context, id string, check func(c customer.Customer) error) (customer.Customer, error) {
	var out customer.Customer
	err := s.inTx(ctx, func(tx *sqlx.Tx) (bool, error) {
		c, err := lockRow(ctx, tx, id)
		if err != nil {
			return false, err
		}
		if check != nil {
			if err := check(c); err != nil {
				return false, err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM customers WHERE id = ?`, id); err != nil {
			return false, err
		}
		out = c
		c.Version++
		c.UpdatedAt = s.now().UTC()
		entity := s.render(c)
		entity.Status = customerevents.StatusRemoved
		return true, eventbus.Emit(ctx, tx, customerevents.CustomerRemoved, entity)
	})
	return out, err
}

// List returns the customers matching f, oldest first, and their total count.
func (s *Store) List(ctx context.Context, f customer.Filter) ([]customer.Customer, int, error) {
	var where mysqldb.Filter
	where.Equal("email", f.Email)
	where.Equal("status", string(f.Status))
	rows, total, err := mysqldb.Page[row](ctx, s.db, columns, "customers", where, "registered_at, id", f.Limit, f.Offset)
	if err != nil {
		return nil, 0, err
	}
	out := make([]customer.Customer, len(rows))
	for i, r := range rows {
		out[i] = r.customer()
	}
	return out, total, nil
}
