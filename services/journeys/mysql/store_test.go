package mysql_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/journeys/journey"
	"github.com/sagittarius-a/sagittarius/services/journeys/journeyevents"
	"github.com/sagittarius-a/sagittarius/services/journeys/mysql"
)

func newStore(t *testing.T) (*mysql.Store, *sqlx.DB) {
	t.Helper()
	db := servicetest.NewDatabase(t, 10, mysql.Migrations)
	c, err := journey.Default()
	if err != nil {
		t.Fatal(err)
	}
	s, err := mysql.NewStore(db, c, func(j journey.Journey) journeyevents.Journey { return journeyevents.Journey{ID: j.ID} }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func record(t *testing.T, s *mysql.Store, db *sqlx.DB, corr, typ, entityKey, entity string, firedAt time.Time) {
	t.Helper()
	err := mysqldb.InTx(context.Background(), db, func(tx *sqlx.Tx) error {
		return s.Record(context.Background(), tx, journey.Received{
			Event:         journey.Event{UUID: uuid.NewString(), Type: typ, Publisher: "x.y", FiredAt: firedAt, EntityKey: entityKey},
			CorrelationID: corr, Entity: []byte(entity)})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Purge forgets old journeys that are settled or untracked, with their
// events and ids, and keeps those still in progress or stuck, and recent ones.
func TestPurgeKeepsWhatIsStillOpen(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	old, recent := time.Now().Add(-48*time.Hour).UTC().Truncate(time.Millisecond), time.Now().UTC().Truncate(time.Millisecond)
	order := `{"id":"` + uuid.NewString() + `","customer_id":"` + uuid.NewString() + `"}`
	record(t, s, db, "untracked-old", "catalog.products.product_added", "product", `{"id":"p1"}`, old)
	record(t, s, db, "placed-old", "sales.orders.order_placed", "order", order, old) // waits for its reservation: stuck
	record(t, s, db, "untracked-new", "catalog.products.product_added", "product", `{"id":"p2"}`, recent)
	if _, err := s.Recheck(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if j, err := s.Get(ctx, "placed-old"); err != nil || j.State != journey.StateStuck || j.StuckStep != "reservation" {
		t.Fatalf("placed-old: %+v %v", j, err)
	}
	n, err := s.Purge(ctx, time.Now().Add(-time.Hour), 10)
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want 1", n, err)
	}
	if _, err := s.Get(ctx, "untracked-old"); err != journey.ErrNotFound {
		t.Errorf("untracked-old: %v, want not found", err)
	}
	var left int
	if err := db.Get(&left, `SELECT COUNT(*) FROM journey_events WHERE journey_id = 'untracked-old'`); err != nil || left != 0 {
		t.Errorf("%d events of a purged journey left (%v)", left, err)
	}
	for _, id := range []string{"placed-old", "untracked-new"} {
		if _, err := s.Get(ctx, id); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	if n, err := s.Purge(ctx, time.Now().Add(-time.Hour), 10); err != nil || n != 0 {
		t.Errorf("second purge: %d, %v", n, err)
	}
}
