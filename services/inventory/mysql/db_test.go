package mysql

import (
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
)

// newTestDB returns a migrated database of its own on the test MariaDB (internal/testinfra),
// dropped when the test ends. It is opened as the service opens its database (NewServiceDatabase), so
// that the store runs on the driver settings it runs on in production (the store reads the
// affected rows of upserts, whose meaning depends on them).
func newTestDB(t testing.TB) *sqlx.DB {
	t.Helper()
	return servicetest.NewDatabase(t, 40, Migrations)
}
