package eventapi

import (
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	invmysql "github.com/sagittarius-a/sagittarius/services/inventory/mysql"
)

// newTestDB returns a migrated database of its own on the test MariaDB (internal/testinfra),
// dropped when the test ends.
func newTestDB(t testing.TB) *sqlx.DB {
	t.Helper()
	return servicetest.NewDatabase(t, 40, invmysql.Migrations)
}
