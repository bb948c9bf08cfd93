package mysql

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	"github.com/sagittarius-a/sagittarius/services/shipping/httpapi"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipment"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

// newTestStore returns a Store on a fresh, migrated database whose sessions wait at most 1 s for
// a lock, the number of times it woke the relay, and the id of a shipment scheduled for order o1.
func newTestStore(t *testing.T) (*Store, *sqlx.DB, *atomic.Int32, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := testinfra.NewDatabaseLockWait(t, 1)
	if err := Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	notified := new(atomic.Int32)
	s, err := NewStore(db, httpapi.NewResources(hal.MustBase("http://gateway.test")), func() { notified.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := s.RecordAddress(ctx, tx, "o1", shipment.Address{Name: "Ada", Line1: "1 Main St", PostalCode: "10115", City: "Berlin", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	sh, created, err := s.ScheduleShipment(ctx, tx, "o1")
	if err != nil || !created {
		t.Fatalf("schedule: %v (created %v)", err, created)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return s, db, notified, sh.ID
}

func countEvents(t *testing.T, db *sqlx.DB, typ string) int {
	t.Helper()
	var n int
	if err := db.Get(&n, `SELECT COUNT(*) FROM eventbus_outbox WHERE type = ?`, typ); err != nil {
		t.Fatal(err)
	}
	return n
}

// UpdateShipment returns the shipment as read with change's error, the shipment unchanged without
// an event when change changes nothing, and the shipment as stored after a change, with its event
// enqueued and the relay woken once.
func TestUpdateShipment(t *testing.T) {
	s, db, notified, id := newTestStore(t)
	ctx := context.Background()
	to := func(st shipment.Status) func(shipment.Shipment, time.Time) (shipment.Shipment, bool, error) {
		return func(cur shipment.Shipment, now time.Time) (shipment.Shipment, bool, error) {
			return cur.Transition(st, now)
		}
	}

	got, err := s.UpdateShipment(ctx, id, to(shipment.Delivered))
	if !errors.Is(err, shipment.ErrIllegalTransition) || got.ID != id || got.Status != shipment.Scheduled {
		t.Fatalf("illegal transition: %+v, %v", got, err)
	}
	got, err = s.UpdateShipment(ctx, id, to(shipment.Scheduled))
	if err != nil || got.Status != shipment.Scheduled || got.Version != 1 {
		t.Fatalf("no change: %+v, %v", got, err)
	}
	if _, err := s.UpdateShipment(ctx, "nope", to(shipment.Dispatched)); !errors.Is(err, shipment.ErrNotFound) {
		t.Fatalf("unknown shipment: %v", err)
	}
	if n := notified.Load(); n != 0 {
		t.Fatalf("relay woken %d times without a change", n)
	}
	got, err = s.UpdateShipment(ctx, id, to(shipment.Dispatched))
	if err != nil || got.Status != shipment.Dispatched || got.Version != 2 || got.DispatchedAt == nil {
		t.Fatalf("dispatch: %+v, %v", got, err)
	}
	if stored, err := s.Shipment(ctx, id); err != nil || stored.Status != shipment.Dispatched || stored.Version != 2 {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	if n := countEvents(t, db, shipmentevents.ShipmentDispatched.Type()); n != 1 {
		t.Fatalf("%d shipment_dispatched events", n)
	}
	if n := notified.Load(); n != 1 {
		t.Fatalf("relay woken %d times, want 1", n)
	}
}

// An API update that fails on a lock wait timeout (1205) runs again (mysqldb.InTx) instead of
// failing the request: change runs once per attempt, with the shipment as then read, and the
// retry stores one change, enqueues one event and wakes the relay once.
func TestUpdateShipmentRetriesALockWaitTimeout(t *testing.T) {
	s, db, notified, id := newTestStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	blocker, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = blocker.Rollback() }()
	if _, err := s.get(ctx, blocker, `id = ?`, id, true); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	type result struct {
		Shipment shipment.Shipment
		Err      error
	}
	done := make(chan result, 1)
	go func() {
		sh, err := s.UpdateShipment(ctx, id, func(cur shipment.Shipment, now time.Time) (shipment.Shipment, bool, error) {
			calls.Add(1)
			return cur.Transition(shipment.Dispatched, now)
		})
		done <- result{sh, err}
	}()
	first := testinfra.AwaitLockWait(t, db, "", done)
	second := testinfra.AwaitLockWait(t, db, first, done) // the first timed out and was run again
	t.Logf("lock waits: %s, then %s", first, second)
	if err := blocker.Rollback(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.Err != nil || r.Shipment.Status != shipment.Dispatched || r.Shipment.Version != 2 {
		t.Fatalf("UpdateShipment: %+v, %v", r.Shipment, r.Err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("change ran %d times, want once: the attempts that timed out never read the shipment", n)
	}
	if n := countEvents(t, db, shipmentevents.ShipmentDispatched.Type()); n != 1 {
		t.Errorf("%d shipment_dispatched events, want 1", n)
	}
	if n := notified.Load(); n != 1 {
		t.Errorf("relay woken %d times, want 1", n)
	}
}
