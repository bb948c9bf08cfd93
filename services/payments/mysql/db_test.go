package mysql

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	"github.com/sagittarius-a/sagittarius/services/payments/httpapi"
)

// newTestStore returns a Store on a migrated database of its own on the test MariaDB
// (internal/testinfra), dropped when the test ends. The database is opened by mysqldb.Open, as the
// service opens it: the store reads the affected rows of upserts, whose meaning depends on the
// driver settings.
func newTestStore(t *testing.T) (*Store, *sqlx.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := mysqldb.Open(ctx, testinfra.NewDatabaseDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() }) // before the database is dropped
	if err := Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(db, httpapi.NewResources(hal.MustBase("http://gw.test")))
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}
