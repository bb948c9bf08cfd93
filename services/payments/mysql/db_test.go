package mysql

import (
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/payments/httpapi"
)

// newTestStore returns a Store on a migrated database of its own on the test MariaDB, dropped
// when the test ends. The database is opened as the service opens it
// (servicetest.NewDatabase): the store reads the affected rows of upserts, whose meaning
// depends on the driver settings.
func newTestStore(t *testing.T) (*Store, *sqlx.DB) {
	t.Helper()
	db := servicetest.NewDatabase(t, 10, Migrations)
	s, err := NewStore(db, httpapi.NewRenderer(hal.MustBase("http://gw.test")))
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}
