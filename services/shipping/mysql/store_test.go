package mysql

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/service"
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
	db := openTestDB(t, 1)
	if err := service.Migrate(ctx, db, Migrations, nil); err != nil {
		t.Fatal(err)
	}
	notified := new(atomic.Int32)
	s, err := NewStore(db, httpapi.NewRenderer(hal.MustBase("http://gateway.test")), func() { notified.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	sh, created, err := s.ScheduleShipment(ctx, tx, "o1", shipment.Address{Name: "Ada", Line1: "1 Main St", PostalCode: "10115", City: "Berlin", Country: "DE"})
	if err != nil || !created {
		t.Fatalf("schedule: %v (created %v)", err, created)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return s, db, notified, sh.ID
}

// openTestDB returns a fresh database (dropped when the test ends) whose sessions wait at most
// lockWait seconds for a lock, opened by mysqldb.Open as the service opens its database: the store
// reads the affected rows of statements, whose meaning depends on the driver settings.
func openTestDB(t *testing.T, lockWait int) *sqlx.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(testinfra.NewDatabaseDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["innodb_lock_wait_timeout"] = strconv.Itoa(lockWait)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := mysqldb.Open(ctx, cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() }) // before the database is dropped
	return db
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

// ScheduleShipment schedules in one statement when the event carries the address, and tells the
// shipment scheduled before and the order cancelled before apart when that statement inserted
// nothing; without an address in the event it schedules to the address recorded from
// order_placed, or fails while none is known.
func TestScheduleShipment(t *testing.T) {
	s, db, _, _ := newTestStore(t)
	ctx := context.Background()
	home := shipment.Address{Name: "Ada Lovelace", Line1: "12 St James's Square", PostalCode: "SW1Y 4JH", City: "London", Country: "GB"}
	office := shipment.Address{Name: "Ada Lovelace", Line1: "1 Analytical Row", Line2: "Floor 2", PostalCode: "EC1A 1BB", City: "London", Country: "GB"}
	inTx := func(f func(tx *sqlx.Tx) error) error {
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		if err := f(tx); err != nil {
			return err
		}
		return tx.Commit()
	}
	type result struct {
		sh      shipment.Shipment
		created bool
		err     error
	}
	schedule := func(orderID string, a shipment.Address) result {
		t.Helper()
		var r result
		if err := inTx(func(tx *sqlx.Tx) error {
			r.sh, r.created, r.err = s.ScheduleShipment(ctx, tx, orderID, a)
			return r.err
		}); err != nil && r.err == nil {
			t.Fatal(err)
		}
		return r
	}
	record := func(orderID string, a shipment.Address) {
		t.Helper()
		if err := inTx(func(tx *sqlx.Tx) error { return s.RecordAddress(ctx, tx, orderID, a) }); err != nil {
			t.Fatal(err)
		}
	}
	cancel := func(orderID string) {
		t.Helper()
		if err := inTx(func(tx *sqlx.Tx) error { _, _, err := s.CancelShipment(ctx, tx, orderID); return err }); err != nil {
			t.Fatal(err)
		}
	}
	stored := func(orderID string) *shipment.Shipment {
		t.Helper()
		ss, _, err := s.Shipments(ctx, shipment.Filter{OrderID: orderID}, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ss) == 0 {
			return nil
		}
		return &ss[0]
	}
	events := func() int { return countEvents(t, db, shipmentevents.ShipmentScheduled.Type()) }
	base := events() // o1 of newTestStore

	// Placed, then confirmed with another address: scheduled to the confirmed one.
	record("o2", home)
	r := schedule("o2", office)
	if r.err != nil || !r.created || r.sh.Address != office || r.sh.Status != shipment.Scheduled || r.sh.Version != 1 {
		t.Fatalf("o2: %+v", r)
	}
	if got := stored("o2"); got == nil || got.ID != r.sh.ID || got.Address != office || !got.ScheduledAt.Equal(r.sh.ScheduledAt) {
		t.Fatalf("o2 stored %+v, want %+v", got, r.sh)
	}
	var confirmed time.Time
	if err := db.Get(&confirmed, `SELECT confirmed_at FROM orders WHERE order_id = 'o2'`); err != nil {
		t.Fatal(err)
	}
	// Confirmed again (republished, with yet another address): the shipment scheduled before,
	// unchanged, and no event; the first confirmation time is kept.
	again := schedule("o2", home)
	if again.err != nil || again.created || again.sh.ID != r.sh.ID || again.sh.Address != office {
		t.Fatalf("o2 again: %+v", again)
	}
	if again = schedule("o2", shipment.Address{}); again.err != nil || again.created || again.sh.ID != r.sh.ID {
		t.Fatalf("o2 again without address: %+v", again)
	}
	var confirmedAgain time.Time
	if err := db.Get(&confirmedAgain, `SELECT confirmed_at FROM orders WHERE order_id = 'o2'`); err != nil || !confirmedAgain.Equal(confirmed) {
		t.Fatalf("confirmed at %v, then %v (%v)", confirmed, confirmedAgain, err)
	}
	if n := events() - base; n != 1 {
		t.Fatalf("%d shipment_scheduled events, want 1", n)
	}

	// Cancelled first, placed or not: nothing scheduled.
	cancel("o3")
	if r := schedule("o3", home); r.err != nil || r.created || r.sh.ID != "" || stored("o3") != nil {
		t.Fatalf("o3: %+v", r)
	}
	record("o4", home)
	cancel("o4")
	if r := schedule("o4", home); r.err != nil || r.created || stored("o4") != nil {
		t.Fatalf("o4: %+v", r)
	}

	// No address in the event: the one recorded from order_placed, or an error while none is known.
	record("o5", home)
	if r := schedule("o5", shipment.Address{}); r.err != nil || !r.created || r.sh.Address != home || stored("o5").Address != home {
		t.Fatalf("o5: %+v", r)
	}
	if r := schedule("o6", shipment.Address{}); r.err == nil || stored("o6") != nil {
		t.Fatalf("o6 without any address: %+v", r)
	}
	if r := schedule("o6", home); r.err != nil || !r.created {
		t.Fatalf("o6 with its address: %+v", r)
	}

	// An address longer than its columns is cut like the stored one: the event tells what is stored.
	long := shipment.Address{Name: strings.Repeat("é", 200), Line1: "x", PostalCode: strings.Repeat("9", 40), City: "y", Country: "GBR-LONDON"}
	r = schedule("o7", long)
	if r.err != nil || !r.created || len(r.sh.Address.Name) > 255 || len(r.sh.Address.PostalCode) != 32 || r.sh.Address.Country != "GBR-LOND" {
		t.Fatalf("o7: %+v", r)
	}
	if got := stored("o7"); got.Address != r.sh.Address {
		t.Fatalf("o7 stored address %+v, scheduled %+v", got.Address, r.sh.Address)
	}
	if n := events() - base; n != 4 {
		t.Fatalf("%d shipment_scheduled events, want 4 (o2, o5, o6, o7)", n)
	}
}

// Orders confirmed at once, each twice, and some cancelled meanwhile: every order not cancelled
// first gets exactly one shipment and one shipment_scheduled, and no handler fails for good (a
// deadlock or lock wait timeout is retried, as the bus redelivers).
func TestConcurrentConfirmations(t *testing.T) {
	s, db, _, _ := newTestStore(t)
	ctx := context.Background()
	const orders = 20
	home := shipment.Address{Name: "Ada", Line1: "1 Main St", PostalCode: "10115", City: "Berlin", Country: "DE"}
	var retries atomic.Int32
	run := func(f func(tx *sqlx.Tx) error) error {
		var err error
		for try := range 10 {
			err = func() error {
				tx, err := db.BeginTxx(ctx, nil)
				if err != nil {
					return err
				}
				defer func() { _ = tx.Rollback() }()
				if err := f(tx); err != nil {
					return err
				}
				return tx.Commit()
			}()
			if !mysqldb.IsRetryable(err) {
				return err
			}
			retries.Add(1)
			time.Sleep(time.Duration(try+1) * 10 * time.Millisecond)
		}
		return err
	}
	errs := make(chan error, 4*orders)
	var wg sync.WaitGroup
	for i := range orders {
		id := fmt.Sprintf("c%02d", i)
		for range 2 {
			wg.Go(func() {
				errs <- run(func(tx *sqlx.Tx) error { _, _, err := s.ScheduleShipment(ctx, tx, id, home); return err })
			})
		}
		if i%5 == 0 {
			wg.Go(func() {
				errs <- run(func(tx *sqlx.Tx) error { _, _, err := s.CancelShipment(ctx, tx, id); return err })
			})
		}
	}
	wg.Wait()
	close(errs)
	t.Logf("%d transactions run again after a deadlock or lock wait timeout", retries.Load())
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ss, total, err := s.Shipments(ctx, shipment.Filter{}, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, sh := range ss {
		seen[sh.OrderID]++
		if sh.Status != shipment.Scheduled && sh.Status != shipment.Cancelled {
			t.Errorf("shipment %+v", sh)
		}
	}
	for i := range orders {
		id := fmt.Sprintf("c%02d", i)
		if seen[id] > 1 || (i%5 != 0 && seen[id] != 1) {
			t.Errorf("order %s has %d shipments", id, seen[id])
		}
	}
	// newTestStore scheduled o1; each shipment here has its one event.
	if n := countEvents(t, db, shipmentevents.ShipmentScheduled.Type()); n != total {
		t.Fatalf("%d shipment_scheduled events for %d shipments", n, total)
	}
}

// TestTheCustomersOfOrders: the first customer recorded for an order stays
// (a later or empty one changes nothing), CustomerOf names it, and the
// shipments of a customer's orders are listed for that customer only.
func TestTheCustomersOfOrders(t *testing.T) {
	s, db, _, id := newTestStore(t)
	ctx := context.Background()
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"c1", "", "c2"} {
		if err := s.RecordCustomer(ctx, tx, "o1", c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordCustomer(ctx, tx, "o2", "c2"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if c, err := s.CustomerOf(ctx, "o1"); err != nil || c != "c1" {
		t.Fatalf("CustomerOf o1: %q %v", c, err)
	}
	if c, err := s.CustomerOf(ctx, "o9"); err != nil || c != "" {
		t.Fatalf("CustomerOf an unknown order: %q %v", c, err)
	}
	for customer, want := range map[string]int{"c1": 1, "c2": 0, "\x00": 0} {
		ss, total, err := s.Shipments(ctx, shipment.Filter{Customer: &customer}, 10, 0)
		if err != nil || total != want || len(ss) != want || (want == 1 && ss[0].ID != id) {
			t.Errorf("shipments of %q: %+v %d %v", customer, ss, total, err)
		}
	}
}
