package mysql

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// newTestDB returns a migrated database of its own on the test MariaDB (internal/testinfra),
// dropped when the test ends. It is opened by mysqldb.Open, as the service opens its database, so
// that the store runs on the driver settings it runs on in production (the store reads the
// affected rows of upserts, whose meaning depends on them).
func newTestDB(t testing.TB) *sqlx.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := mysqldb.Open(ctx, testinfra.NewDatabaseDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() }) // before the database is dropped
	db.SetMaxOpenConns(40)
	db.SetMaxIdleConns(40)
	if err := Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	return db
}
