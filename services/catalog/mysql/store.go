// Package mysql stores catalog.products in MySQL/MariaDB.
//
// Every exported method of Store is one transaction, and the event it causes
// (product_added, product_updated, product_retired) is written to the
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
	"github.com/sagittarius-a/sagittarius/services/catalog/product"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the service's goose migrations, for the service kit
// (service.Spec.Migrations), which applies them with the bus tables.
var Migrations = mysqldb.Migrations(migrations, "migrations")

// Renderer turns a product into its REST model, HAL links included: the
// entity of every product event. httpapi.Renderer.Product is the one main uses.
type Renderer func(product.Product) productevents.Product

// Store is the catalog database. It is safe for concurrent use.
type Store struct {
	db     *sqlx.DB
	render Renderer
	notify func()
}

var _ product.Store = (*Store)(nil)

// NewStore returns a Store on db. render builds event entities; notify is called
// after each commit that enqueued an event (eventbus.Relay.Notify) and may be nil.
func NewStore(db *sqlx.DB, render Renderer, notify func()) (*Store, error) {
	if db == nil || render == nil {
		return nil, errors.New("mysql: New needs a database and a renderer")
	}
	if notify == nil {
		notify = func() {}
	}
	return &Store{db: db, render: render, notify: notify}, nil
}

type row struct {
	ID            string    `db:"id"`
	SKU           string    `db:"sku"`
	Name          string    `db:"name"`
	Description   string    `db:"description"`
	PriceAmount   int64     `db:"price_amount"`
	PriceCurrency string    `db:"price_currency"`
	Status        string    `db:"status"`
	Version       int64     `db:"version"`
	AddedAt       time.Time `db:"added_at"`
	UpdatedAt     time.Time `db:"updated_at"`
}

func (r row) product() product.Product {
	return product.Product{
		ID: r.ID, SKU: r.SKU, Name: r.Name, Description: r.Description,
		Price:  product.Money{Amount: r.PriceAmount, Currency: r.PriceCurrency},
		Status: product.Status(r.Status), Version: r.Version,
		AddedAt: r.AddedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

const columns = "id, sku, name, description, price_amount, price_currency, status, version, added_at, updated_at"

// inTx runs fn in a transaction and commits it, running it again on a
// deadlock or lock wait timeout: fn must only assign what it reports to its
// caller. When the attempt that committed reports that it enqueued events,
// the relay is woken after the commit (mysqldb.InTxNotify).
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) (enqueued bool, err error)) error {
	return mysqldb.InTxNotify(ctx, s.db, s.notify, fn)
}

// Create inserts p and enqueues product_added.
func (s *Store) Create(ctx context.Context, p product.Product) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) (bool, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO products (`+columns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.SKU, p.Name, p.Description, p.Price.Amount, p.Price.Currency, string(p.Status), p.Version, p.AddedAt, p.UpdatedAt)
		if mysqldb.IsDuplicate(err) {
			return false, product.ErrSKUTaken
		}
		if err != nil {
			return false, err
		}
		return true, eventbus.Emit(ctx, tx, productevents.ProductAdded, s.render(p))
	})
}

// Get returns the product with id, or product.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (product.Product, error) {
	var r row
	err := s.db.GetContext(ctx, &r, `SELECT `+columns+` FROM products WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return product.Product{}, product.ErrNotFound
	}
	if err != nil {
		return product.Product{}, err
	}
	return r.product(), nil
}

// Update locks the product row, applies change and, when it changed
// something, stores it and enqueues product_updated or product_retired. The
// transaction runs again on a deadlock, so change may be called more than
// once, each time with the row as then read.
func (s *Store) Update(ctx context.Context, id string, change func(p *product.Product) (product.Outcome, error)) (product.Product, error) {
	var out product.Product
	err := s.inTx(ctx, func(tx *sqlx.Tx) (bool, error) {
		var r row
		err := tx.GetContext(ctx, &r, `SELECT `+columns+` FROM products WHERE id = ? FOR UPDATE`, id)
		if errors.Is(err, sql.ErrNoRows) {
			return false, product.ErrNotFound
		}
		if err != nil {
			return false, err
		}
		p := r.product()
		outcome, err := change(&p)
		if err != nil {
			return false, err
		}
		out = p
		if outcome == product.Unchanged {
			return false, nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE products SET name = ?, description = ?, price_amount = ?, price_currency = ?,
			status = ?, version = ?, updated_at = ? WHERE id = ?`,
			p.Name, p.Description, p.Price.Amount, p.Price.Currency, string(p.Status), p.Version, p.UpdatedAt, p.ID)
		if err != nil {
			return false, err
		}
		et := productevents.ProductUpdated
		if outcome == product.Retired {
			et = productevents.ProductRetired
		}
		return true, eventbus.Emit(ctx, tx, et, s.render(p))
	})
	return out, err
}

// List returns the products matching f, oldest first, and their total count,
// read in one snapshot.
func (s *Store) List(ctx context.Context, f product.Filter) ([]product.Product, int, error) {
	var where mysqldb.Filter
	where.Equal("status", string(f.Status))
	where.Equal("sku", f.SKU)
	rows, total, err := mysqldb.Page[row](ctx, s.db, columns, "products", where, "added_at, id", f.Limit, f.Offset)
	if err != nil {
		return nil, 0, err
	}
	out := make([]product.Product, len(rows))
	for i, r := range rows {
		out[i] = r.product()
	}
	return out, total, nil
}
