package eventapi

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	shipmysql "github.com/sagittarius-a/sagittarius/services/shipping/mysql"
)

// newTestDB returns a migrated database of its own on the test MariaDB (internal/testinfra),
// dropped when the test ends.
func newTestDB(t testing.TB) *sqlx.DB {
	t.Helper()
	db := testinfra.NewDatabase(t)
	db.SetMaxOpenConns(40)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := shipmysql.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	return db
}
