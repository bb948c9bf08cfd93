package servicetest

import (
	"context"
	"io/fs"
	"log/slog"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/service"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// NewDatabase creates a fresh database opened as a service opens its own
// (testinfra.NewMigratedDatabase: up to conns connections) with the schema
// the service kit gives it at start (service.Migrate): the service's
// migrations (its mysql.Migrations) and the bus and failed-messages tables.
// It is for a store's tests; the pool is closed, then the database dropped,
// in t.Cleanup.
func NewDatabase(t testing.TB, conns int, migrations fs.FS) *sqlx.DB {
	t.Helper()
	return testinfra.NewMigratedDatabase(t, conns, func(ctx context.Context, db *sqlx.DB, logger *slog.Logger) error {
		return service.Migrate(ctx, db, migrations, logger)
	})
}
