package eventapi

import (
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	paymysql "github.com/sagittarius-a/sagittarius/services/payments/mysql"
)

// newTestDB returns a migrated database of its own on the test MariaDB (internal/testinfra),
// dropped when the test ends.
func newTestDB(t testing.TB) *sqlx.DB {
	t.Helper()
	return servicetest.NewDatabase(t, 40, paymysql.Migrations)
}
