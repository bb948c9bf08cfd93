// Package mysql stores iam.accounts in MySQL/MariaDB: the accounts
// (account.Store) and what the OpenID provider keeps (idp.Store): clients,
// authorization requests, refresh tokens (by SHA-256 only), signing keys and
// the code-sealing secret.
//
// Every exported method is one transaction. Creating an account writes
// account_registered to the eventbus outbox (eventbus.Enqueue) in that same
// transaction; after the commit the store wakes the relay.
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
	"github.com/sagittarius-a/sagittarius/services/identity/account"
	"github.com/sagittarius-a/sagittarius/services/identity/accountevents"
	"github.com/sagittarius-a/sagittarius/services/identity/idp"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the service's goose migrations, for the service kit
// (service.Spec.Migrations), which applies them with the bus tables.
var Migrations = func() fs.FS { sub, _ := fs.Sub(migrations, "migrations"); return sub }()

// Migrate applies the service's embedded migrations and the eventbus tables
// (outbox, inbox) to db (for tests; the service kit does it at start).
// logger may be nil.
func Migrate(ctx context.Context, db *sqlx.DB, logger *slog.Logger) error {
	if err := mysqldb.Migrate(ctx, db, Migrations, logger); err != nil {
		return err
	}
	if err := eventbus.Migrate(ctx, db); err != nil {
		return fmt.Errorf("eventbus tables: %w", err)
	}
	return nil
}

// Renderer turns an account into its REST model, HAL links included: the
// entity of account_registered. httpapi.Renderer.Account is the one main uses.
type Renderer func(account.Account) accountevents.Account

// Store is the identity database. It is safe for concurrent use.
type Store struct {
	db     *sqlx.DB
	render Renderer
	notify func()
}

var (
	_ account.Store = (*Store)(nil)
	_ idp.Store     = (*Store)(nil)
)

// New returns a Store on db. render builds event entities; notify is called
// after each commit that enqueued an event (eventbus.Relay.Notify) and may be nil.
func New(db *sqlx.DB, render Renderer, notify func()) (*Store, error) {
	if db == nil || render == nil {
		return nil, errors.New("mysql: New needs a database and a renderer")
	}
	if notify == nil {
		notify = func() {}
	}
	return &Store{db: db, render: render, notify: notify}, nil
}

// Ping checks the database.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// --- accounts -------------------------------------------------------------

type accountRow struct {
	ID           string         `db:"id"`
	Email        string         `db:"email"`
	Name         string         `db:"name"`
	Role         string         `db:"role"`
	CustomerID   sql.NullString `db:"customer_id"`
	PasswordHash string         `db:"password_hash"`
	Status       string         `db:"status"`
	Version      int64          `db:"version"`
	CreatedAt    time.Time      `db:"created_at"`
	UpdatedAt    time.Time      `db:"updated_at"`
}

func (r accountRow) account() account.Account {
	return account.Account{
		ID: r.ID, Email: r.Email, Name: r.Name, Role: account.Role(r.Role), CustomerID: r.CustomerID.String,
		PasswordHash: r.PasswordHash, Status: account.Status(r.Status), Version: r.Version,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

const accountColumns = "id, email, name, role, customer_id, password_hash, status, version, created_at, updated_at"

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// CreateAccount inserts a and enqueues account_registered (without the
// password hash: the entity is the REST model).
func (s *Store) CreateAccount(ctx context.Context, a account.Account) error {
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO accounts (`+accountColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.Email, a.Name, string(a.Role), nullString(a.CustomerID), a.PasswordHash, string(a.Status), a.Version, a.CreatedAt, a.UpdatedAt)
		if mysqldb.IsDuplicate(err) {
			return account.ErrEmailTaken
		}
		if err != nil {
			return err
		}
		msg, err := accountevents.AccountRegistered.New(ctx, s.render(a))
		if err != nil {
			return err
		}
		return eventbus.Enqueue(ctx, tx, msg)
	})
	if err != nil {
		return err
	}
	s.notify()
	return nil
}

func (s *Store) getAccount(ctx context.Context, q sqlx.QueryerContext, where string, arg any) (account.Account, error) {
	var r accountRow
	err := sqlx.GetContext(ctx, q, &r, `SELECT `+accountColumns+` FROM accounts WHERE `+where, arg)
	if errors.Is(err, sql.ErrNoRows) {
		return account.Account{}, account.ErrNotFound
	}
	if err != nil {
		return account.Account{}, err
	}
	return r.account(), nil
}

// Account returns the account with id, or account.ErrNotFound.
func (s *Store) Account(ctx context.Context, id string) (account.Account, error) {
	return s.getAccount(ctx, s.db, "id = ?", id)
}

// AccountByEmail returns the account signing in with email, or account.ErrNotFound.
func (s *Store) AccountByEmail(ctx context.Context, email string) (account.Account, error) {
	return s.getAccount(ctx, s.db, "email = ?", account.NormalizeEmail(email))
}

// UpdateAccount locks the account row, applies change and, when it changed
// something, stores it. No event: the only change today is a password
// (provisioning), which no other service needs to know. change may run more
// than once (the transaction is retried on a deadlock).
func (s *Store) UpdateAccount(ctx context.Context, id string, change func(a *account.Account) (bool, error)) (account.Account, error) {
	var out account.Account
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		a, err := s.getAccount(ctx, tx, "id = ? FOR UPDATE", id)
		if err != nil {
			return err
		}
		changed, err := change(&a)
		if err != nil {
			return err
		}
		out = a
		if !changed {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET email = ?, name = ?, role = ?, password_hash = ?, status = ?, version = ?, updated_at = ? WHERE id = ?`,
			a.Email, a.Name, string(a.Role), a.PasswordHash, string(a.Status), a.Version, a.UpdatedAt, a.ID)
		if mysqldb.IsDuplicate(err) {
			return account.ErrEmailTaken
		}
		return err
	})
	return out, err
}

// ListAccounts returns the accounts matching f, oldest first, and their total count.
func (s *Store) ListAccounts(ctx context.Context, f account.Filter) ([]account.Account, int, error) {
	var where mysqldb.Filter
	where.Equal("email", f.Email)
	where.Equal("role", string(f.Role))
	rows, total, err := mysqldb.Page[accountRow](ctx, s.db, accountColumns, "accounts", where, "created_at, id", f.Limit, f.Offset)
	if err != nil {
		return nil, 0, err
	}
	out := make([]account.Account, len(rows))
	for i, r := range rows {
		out[i] = r.account()
	}
	return out, total, nil
}
