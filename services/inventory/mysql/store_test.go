package mysql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/service"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	"github.com/sagittarius-a/sagittarius/services/inventory/httpapi"
	"github.com/sagittarius-a/sagittarius/services/inventory/inventory"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
)

func newTestStore(t *testing.T) (*Store, *sqlx.DB) {
	t.Helper()
	db := newTestDB(t)
	s, err := NewStore(db, httpapi.NewRenderer(hal.MustBase("http://gateway.test")), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

// inTx runs f in a transaction and commits it.
func inTx(t *testing.T, db *sqlx.DB, f func(tx *sqlx.Tx) error) {
	t.Helper()
	if err := tryTx(db, f); err != nil {
		t.Fatal(err)
	}
}

func tryTx(db *sqlx.DB, f func(tx *sqlx.Tx) error) error {
	tx, err := db.Beginx()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// outbox returns the bodies of the outbox events of type typ, oldest first.
func outbox(t *testing.T, db *sqlx.DB, typ string) []map[string]json.RawMessage {
	t.Helper()
	var bodies [][]byte
	if err := db.Select(&bodies, `SELECT body FROM eventbus_outbox WHERE type = ? ORDER BY created_at, uuid`, typ); err != nil {
		t.Fatal(err)
	}
	var out []map[string]json.RawMessage
	for _, b := range bodies {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func stockOf(t *testing.T, s *Store, productID string) inventory.StockItem {
	t.Helper()
	item, err := s.StockItem(context.Background(), productID)
	if err != nil {
		t.Fatal(err)
	}
	return item
}

func addProduct(t *testing.T, s *Store, db *sqlx.DB, id string, stock int64) {
	t.Helper()
	inTx(t, db, func(tx *sqlx.Tx) error { return s.AddProduct(context.Background(), tx, id, "Product "+id) })
	if stock > 0 {
		if _, _, err := s.Replenish(context.Background(), id, stock); err != nil {
			t.Fatal(err)
		}
	}
}

func reserve(t *testing.T, s *Store, db *sqlx.DB, orderID string, lines ...inventory.Line) (r inventory.Reservation, created bool) {
	t.Helper()
	inTx(t, db, func(tx *sqlx.Tx) error {
		var err error
		r, created, err = s.ReserveStock(context.Background(), tx, orderID, lines)
		return err
	})
	return r, created
}

func release(t *testing.T, s *Store, db *sqlx.DB, orderID string) (r inventory.Reservation, released bool) {
	t.Helper()
	inTx(t, db, func(tx *sqlx.Tx) error {
		var err error
		r, released, err = s.ReleaseStock(context.Background(), tx, orderID)
		return err
	})
	return r, released
}

func TestProductsReadModel(t *testing.T) {
	s, db := newTestStore(t)
	ctx := context.Background()
	addProduct(t, s, db, "p1", 0)
	if got := stockOf(t, s, "p1"); got.Status != inventory.ProductActive || got.Available != 0 || got.ProductName != "Product p1" {
		t.Fatalf("added: %+v", got)
	}
	// product_added twice keeps the stock.
	if _, _, err := s.Replenish(ctx, "p1", 3); err != nil {
		t.Fatal(err)
	}
	addProduct(t, s, db, "p1", 0)
	if got := stockOf(t, s, "p1"); got.Available != 3 {
		t.Fatalf("re-added: %+v", got)
	}
	inTx(t, db, func(tx *sqlx.Tx) error { return s.RenameProduct(ctx, tx, "p1", "Renamed") })
	inTx(t, db, func(tx *sqlx.Tx) error { return s.RetireProduct(ctx, tx, "p1", "") })
	got := stockOf(t, s, "p1")
	if got.Status != inventory.ProductRetired || got.ProductName != "Renamed" || got.Available != 3 {
		t.Fatalf("retired: %+v", got)
	}
	// Out of order: retired before added stays retired.
	inTx(t, db, func(tx *sqlx.Tx) error { return s.RetireProduct(ctx, tx, "p2", "Late") })
	addProduct(t, s, db, "p2", 0)
	inTx(t, db, func(tx *sqlx.Tx) error { return s.RenameProduct(ctx, tx, "p2", "Later") })
	if got := stockOf(t, s, "p2"); got.Status != inventory.ProductRetired || got.ProductName != "Later" {
		t.Fatalf("retired first: %+v", got)
	}
	// Invalid ids are refused.
	err := tryTx(db, func(tx *sqlx.Tx) error { return s.AddProduct(ctx, tx, "", "x") })
	if !errors.Is(err, inventory.ErrInvalid) {
		t.Fatalf("empty id: %v", err)
	}
	if _, err := s.StockItem(ctx, "unknown"); !errors.Is(err, inventory.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestReplenish(t *testing.T) {
	s, db := newTestStore(t)
	ctx := context.Background()
	addProduct(t, s, db, "p1", 0)
	rep, item, err := s.Replenish(ctx, "p1", 5)
	if err != nil {
		t.Fatal(err)
	}
	if item.Available != 5 || rep.Quantity != 5 || rep.ProductID != "p1" || rep.ID == "" {
		t.Fatalf("rep %+v item %+v", rep, item)
	}
	got, err := s.Replenishment(ctx, rep.ID)
	if err != nil || got.ID != rep.ID || got.Quantity != 5 || !got.CreatedAt.Equal(rep.CreatedAt) {
		t.Fatalf("read back %+v %v", got, err)
	}
	if _, _, err := s.Replenish(ctx, "p1", 2); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, s, "p1"); got.Available != 7 || got.Version != 3 {
		t.Fatalf("stock %+v", got)
	}
	evs := outbox(t, db, stockevents.StockReplenished.Type())
	if len(evs) != 2 {
		t.Fatalf("%d stock_replenished events", len(evs))
	}
	var last stockevents.Stock
	if err := json.Unmarshal(evs[1]["stock"], &last); err != nil {
		t.Fatal(err)
	}
	if last.Available != 7 || last.Links.Href("self") != "http://gateway.test/inventory/v1/stock-items/p1" ||
		last.Links.Href("product") != "http://gateway.test/catalog/v1/products/p1" {
		t.Fatalf("event entity %+v", last)
	}

	tests := []struct {
		name    string
		product string
		qty     int64
		want    error
	}{
		{"unknown product", "nope", 1, inventory.ErrNotFound},
		{"zero", "p1", 0, inventory.ErrInvalid},
		{"too many", "p1", inventory.MaxReplenishment + 1, inventory.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := s.Replenish(ctx, tt.product, tt.qty); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	inTx(t, db, func(tx *sqlx.Tx) error { return s.RetireProduct(ctx, tx, "p1", "") })
	if _, _, err := s.Replenish(ctx, "p1", 1); !errors.Is(err, inventory.ErrProductRetired) {
		t.Fatalf("retired: %v", err)
	}
	if got := stockOf(t, s, "p1"); got.Available != 7 {
		t.Fatalf("failed replenishments changed the stock: %+v", got)
	}
	if n := len(outbox(t, db, stockevents.StockReplenished.Type())); n != 2 {
		t.Fatalf("failed replenishments enqueued events: %d", n)
	}
	reps, total, err := s.Replenishments(ctx, "p1", 1, 0)
	if err != nil || total != 2 || len(reps) != 1 || reps[0].Quantity != 2 {
		t.Fatalf("replenishments %+v total %d err %v", reps, total, err)
	}
}

func TestReserveAndRelease(t *testing.T) {
	s, db := newTestStore(t)
	ctx := context.Background()
	addProduct(t, s, db, "a", 5)
	addProduct(t, s, db, "b", 2)

	// Held: every line covered; duplicate products are merged.
	r, created := reserve(t, s, db, "o1", line("a", 2), line("b", 1), line("a", 1))
	if !created || r.Status != inventory.Held || len(r.Lines) != 2 || r.Lines[0] != (line("a", 3)) {
		t.Fatalf("o1: %+v", r)
	}
	if a, b := stockOf(t, s, "a"), stockOf(t, s, "b"); a.Available != 2 || a.Reserved != 3 || b.Available != 1 || b.Reserved != 1 {
		t.Fatalf("after o1: a %+v b %+v", a, b)
	}
	// The same order again changes nothing and enqueues nothing.
	again, created := reserve(t, s, db, "o1", line("a", 2))
	if created || again.Status != inventory.Held || len(again.Lines) != 2 {
		t.Fatalf("o1 again: %+v %v", again, created)
	}
	if a := stockOf(t, s, "a"); a.Available != 2 {
		t.Fatalf("o1 twice reserved twice: %+v", a)
	}
	if n := len(outbox(t, db, stockevents.StockReserved.Type())); n != 1 {
		t.Fatalf("%d stock_reserved events", n)
	}

	// Rejected: one line short, nothing held.
	r, _ = reserve(t, s, db, "o2", line("a", 1), line("b", 2), line("ghost", 1))
	if r.Status != inventory.Rejected || r.Reason != inventory.ReasonOutOfStock ||
		len(r.Shortages) != 2 || r.Shortages[0] != (inventory.Shortage{ProductID: "b", Requested: 2, Available: 1}) || r.Shortages[1] != (inventory.Shortage{ProductID: "ghost", Requested: 1, Available: 0}) {
		t.Fatalf("o2: %+v", r)
	}
	if a := stockOf(t, s, "a"); a.Available != 2 || a.Reserved != 3 {
		t.Fatalf("rejected reservation held stock: %+v", a)
	}
	stored, err := s.Reservation(ctx, "o2")
	if err != nil || stored.Status != inventory.Rejected || len(stored.Shortages) != 2 || len(stored.Lines) != 3 {
		t.Fatalf("stored o2: %+v %v", stored, err)
	}
	evs := outbox(t, db, stockevents.StockReservationRejected.Type())
	if len(evs) != 1 {
		t.Fatalf("%d rejections", len(evs))
	}
	var rej stockevents.Reservation
	if err := json.Unmarshal(evs[0]["reservation"], &rej); err != nil {
		t.Fatal(err)
	}
	if rej.Reason != "out_of_stock" || len(rej.RejectedLines) != 2 || rej.Links.Href("order") != "http://gateway.test/orders/v1/orders/o2" {
		t.Fatalf("rejection entity %+v", rej)
	}

	// Invalid lines: rejected invalid_order.
	r, _ = reserve(t, s, db, "o3", line("a", 0))
	if r.Status != inventory.Rejected || r.Reason != inventory.ReasonInvalidOrder {
		t.Fatalf("o3: %+v", r)
	}
	r, _ = reserve(t, s, db, "o3b")
	if r.Status != inventory.Rejected || r.Reason != inventory.ReasonInvalidOrder {
		t.Fatalf("o3b: %+v", r)
	}

	// Release once.
	r, released := release(t, s, db, "o1")
	if !released || r.Status != inventory.Released || r.ReleasedAt == nil {
		t.Fatalf("release o1: %+v", r)
	}
	if a, b := stockOf(t, s, "a"), stockOf(t, s, "b"); a.Available != 5 || a.Reserved != 0 || b.Available != 2 || b.Reserved != 0 {
		t.Fatalf("after release: a %+v b %+v", a, b)
	}
	if _, released := release(t, s, db, "o1"); released {
		t.Fatal("released twice")
	}
	if a := stockOf(t, s, "a"); a.Available != 5 {
		t.Fatalf("second release changed stock: %+v", a)
	}
	if _, released := release(t, s, db, "o2"); released {
		t.Fatal("released a rejected reservation")
	}
	if n := len(outbox(t, db, stockevents.StockReleased.Type())); n != 1 {
		t.Fatalf("%d stock_released events", n)
	}
	// A late order_placed for a released order changes nothing.
	if _, created := reserve(t, s, db, "o1", line("a", 1)); created {
		t.Fatal("reserved a released order again")
	}

	// Cancelled before placed: remembered, the late placement is rejected.
	if _, released := release(t, s, db, "o4"); released {
		t.Fatal("released an unknown order")
	}
	if _, released := release(t, s, db, "o4"); released {
		t.Fatal("released an unknown order twice")
	}
	r, created = reserve(t, s, db, "o4", line("a", 1))
	if !created || r.Status != inventory.Rejected || r.Reason != inventory.ReasonOrderCancelled {
		t.Fatalf("o4: %+v", r)
	}
	if a := stockOf(t, s, "a"); a.Available != 5 {
		t.Fatalf("o4 held stock: %+v", a)
	}

	// Listing with filters.
	list, total, err := s.Reservations(ctx, inventory.ReservationFilter{Status: inventory.Rejected}, 10, 0)
	if err != nil || total != 4 || len(list) != 4 {
		t.Fatalf("rejected list: %d %d %v", len(list), total, err)
	}
	list, total, err = s.Reservations(ctx, inventory.ReservationFilter{ProductID: "b"}, 1, 0)
	if err != nil || total != 2 || len(list) != 1 {
		t.Fatalf("product b list: %d %d %v", len(list), total, err)
	}
	items, total, err := s.StockItems(ctx, inventory.StockFilter{Status: inventory.ProductActive}, 1, 1)
	if err != nil || total != 2 || len(items) != 1 || items[0].ProductID != "b" {
		t.Fatalf("stock items: %+v %d %v", items, total, err)
	}
}

func ship(t *testing.T, s *Store, db *sqlx.DB, orderID string) (r inventory.Reservation, shipped bool) {
	t.Helper()
	inTx(t, db, func(tx *sqlx.Tx) error {
		var err error
		r, shipped, err = s.ShipStock(context.Background(), tx, orderID)
		return err
	})
	return r, shipped
}

// balanced fails the test unless available + reserved + shipped = replenished for the product.
func balanced(t *testing.T, item inventory.StockItem) {
	t.Helper()
	if item.Available+item.Reserved+item.Shipped != item.Replenished {
		t.Fatalf("stock of %s out of balance: %+v", item.ProductID, item)
	}
}

// TestShipCountsStockDown: a held reservation ships once (reserved -> shipped, stock_shipped once);
// released, rejected and unknown orders ship nothing; a shipped reservation cannot be released; the
// balance available + reserved + shipped = replenished holds throughout.
func TestShipCountsStockDown(t *testing.T) {
	s, db := newTestStore(t)
	ctx := context.Background()
	addProduct(t, s, db, "a", 5)
	addProduct(t, s, db, "b", 2)
	reserve(t, s, db, "o1", line("a", 2), line("b", 1))
	reserve(t, s, db, "o2", line("a", 1))
	reserve(t, s, db, "o3", line("b", 9)) // rejected: out of stock

	r, shipped := ship(t, s, db, "o1")
	if !shipped || r.Status != inventory.Shipped || r.ShippedAt == nil || r.ReleasedAt != nil {
		t.Fatalf("ship o1: %+v %v", r, shipped)
	}
	a, b := stockOf(t, s, "a"), stockOf(t, s, "b")
	if a.Available != 2 || a.Reserved != 1 || a.Shipped != 2 || a.Replenished != 5 || b.Available != 1 || b.Reserved != 0 || b.Shipped != 1 {
		t.Fatalf("after shipping o1: a %+v b %+v", a, b)
	}
	balanced(t, a)
	balanced(t, b)
	// Twice, and a cancellation after the goods left: nothing changes.
	if _, shipped := ship(t, s, db, "o1"); shipped {
		t.Fatal("shipped twice")
	}
	if _, released := release(t, s, db, "o1"); released {
		t.Fatal("released a shipped reservation")
	}
	if got := stockOf(t, s, "a"); got != a {
		t.Fatalf("stock changed: %+v, was %+v", got, a)
	}
	stored, err := s.Reservation(ctx, "o1")
	if err != nil || stored.Status != inventory.Shipped || stored.ShippedAt == nil {
		t.Fatalf("stored o1: %+v %v", stored, err)
	}
	// Released first: the late dispatch ships nothing.
	release(t, s, db, "o2")
	if _, shipped := ship(t, s, db, "o2"); shipped {
		t.Fatal("shipped a released reservation")
	}
	// Rejected and unknown orders ship nothing.
	if _, shipped := ship(t, s, db, "o3"); shipped {
		t.Fatal("shipped a rejected reservation")
	}
	if _, shipped := ship(t, s, db, "ghost"); shipped {
		t.Fatal("shipped an unknown order")
	}
	a = stockOf(t, s, "a")
	if a.Available != 3 || a.Reserved != 0 || a.Shipped != 2 {
		t.Fatalf("end: a %+v", a)
	}
	balanced(t, a)
	balanced(t, stockOf(t, s, "b"))
	evs := outbox(t, db, stockevents.StockShipped.Type())
	if len(evs) != 1 {
		t.Fatalf("%d stock_shipped events", len(evs))
	}
	var got stockevents.Reservation
	if err := json.Unmarshal(evs[0]["reservation"], &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != stockevents.ReservationShipped || got.OrderID != "o1" || got.ShippedAt == nil {
		t.Fatalf("stock_shipped entity %+v", got)
	}
	list, total, err := s.Reservations(ctx, inventory.ReservationFilter{Status: inventory.Shipped}, 10, 0)
	if err != nil || total != 1 || len(list) != 1 || list[0].OrderID != "o1" {
		t.Fatalf("shipped list: %+v %d %v", list, total, err)
	}
}

// TestConcurrentReservationsNeverOversell places many orders at once for the last units of scarce
// products, some of them for two products in opposite line order: exactly as many succeed as there
// are units, nothing goes below zero, and no reservation deadlocks for good.
func TestConcurrentReservationsNeverOversell(t *testing.T) {
	s, db := newTestStore(t)
	ctx := context.Background()
	const units, orders = 5, 30
	addProduct(t, s, db, "scarce", units)
	addProduct(t, s, db, "plenty", 1000)

	var wg sync.WaitGroup
	results := make([]inventory.Reservation, orders)
	errs := make([]error, orders)
	start := make(chan struct{})
	for i := range orders {
		wg.Go(func() {
			<-start
			lines := []inventory.Line{line("scarce", 1)}
			if i%2 == 0 {
				lines = []inventory.Line{line("plenty", 1), line("scarce", 1)}
			} else if i%3 == 0 {
				lines = []inventory.Line{line("scarce", 1), line("plenty", 2)}
			}
			// Like HandleTx: a deadlock or lock wait timeout is retried.
			for try := 0; try < 10; try++ {
				errs[i] = tryTx(db, func(tx *sqlx.Tx) error {
					var err error
					results[i], _, err = s.ReserveStock(ctx, tx, fmt.Sprintf("order-%02d", i), lines)
					return err
				})
				if !isDeadlock(errs[i]) {
					break
				}
				time.Sleep(time.Duration(try+1) * 10 * time.Millisecond)
			}
		})
	}
	close(start)
	wg.Wait()
	held, plenty := 0, int64(0)
	for i := range orders {
		if errs[i] != nil {
			t.Fatalf("order %d: %v", i, errs[i])
		}
		if results[i].Status == inventory.Held {
			held++
			for _, l := range results[i].Lines {
				if l.ProductID == "plenty" {
					plenty += l.Quantity
				}
			}
		} else if results[i].Reason != inventory.ReasonOutOfStock {
			t.Fatalf("order %d: %+v", i, results[i])
		}
	}
	if held != units {
		t.Fatalf("%d reservations held for %d units", held, units)
	}
	sc, pl := stockOf(t, s, "scarce"), stockOf(t, s, "plenty")
	if sc.Available != 0 || sc.Reserved != units {
		t.Fatalf("scarce: %+v", sc)
	}
	if pl.Available != 1000-plenty || pl.Reserved != plenty {
		t.Fatalf("plenty: %+v (held %d)", pl, plenty)
	}
	if n := len(outbox(t, db, stockevents.StockReserved.Type())); n != units {
		t.Fatalf("%d stock_reserved events", n)
	}
	if n := len(outbox(t, db, stockevents.StockReservationRejected.Type())); n != orders-units {
		t.Fatalf("%d stock_reservation_rejected events", n)
	}
}

func isDeadlock(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

func line(productID string, quantity int64) inventory.Line {
	return inventory.Line{ProductID: productID, Quantity: quantity}
}

// TestReplenishRetriesALockWaitTimeout: an API transaction that fails on a lock wait timeout
// (1205) runs again (mysqldb.InTx) instead of failing the request, and its retry records one
// replenishment, enqueues one event and wakes the relay once. The store's sessions wait 1 s for a
// lock; another transaction holds the stock row until Replenish's second attempt waits for it.
func TestReplenishRetriesALockWaitTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := testinfra.NewDatabaseLockWait(t, 1)
	if err := service.Migrate(ctx, db, Migrations, nil); err != nil {
		t.Fatal(err)
	}
	var notified atomic.Int32
	s, err := NewStore(db, httpapi.NewRenderer(hal.MustBase("http://gateway.test")), func() { notified.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	addProduct(t, s, db, "p1", 0)

	blocker, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = blocker.Rollback() }()
	var id string
	if err := blocker.QueryRowxContext(ctx, `SELECT product_id FROM stock_items WHERE product_id = 'p1' FOR UPDATE`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Replenish(ctx, "p1", 3)
		done <- err
	}()
	first := testinfra.AwaitLockWait(t, db, "", done)
	second := testinfra.AwaitLockWait(t, db, first, done) // the first timed out and was run again
	t.Logf("lock waits: %s, then %s", first, second)
	if err := blocker.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Replenish: %v", err)
	}
	if got := stockOf(t, s, "p1"); got.Available != 3 || got.Version != 2 {
		t.Fatalf("stock %+v, want 3 available at version 2", got)
	}
	if reps, total, err := s.Replenishments(ctx, "p1", 10, 0); err != nil || total != 1 || len(reps) != 1 {
		t.Fatalf("replenishments %+v (total %d, %v), want one", reps, total, err)
	}
	if n := len(outbox(t, db, stockevents.StockReplenished.Type())); n != 1 {
		t.Fatalf("%d stock_replenished events, want 1", n)
	}
	if n := notified.Load(); n != 1 {
		t.Fatalf("relay woken %d times, want 1", n)
	}
}

// markOrder tells what its upsert did from the affected rows, with the driver settings of the
// service (newTestDB opens the database with mysqldb.Open): inserted for an unknown order,
// changed when the order's other event was handled first, unchanged when the same event was.
func TestMarkOrderReportsWhatTheUpsertDid(t *testing.T) {
	_, db := newTestStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	steps := []struct {
		order, column string
		want          upsert
	}{
		{"o1", "placed_at", rowInserted},
		{"o1", "placed_at", rowUnchanged},
		{"o1", "cancelled_at", rowChanged},
		{"o1", "cancelled_at", rowUnchanged},
		{"o1", "placed_at", rowUnchanged},
		{"o2", "cancelled_at", rowInserted},
		{"o2", "placed_at", rowChanged},
	}
	for i, st := range steps {
		inTx(t, db, func(tx *sqlx.Tx) error {
			got, err := markOrder(ctx, tx, st.order, st.column, now.Add(time.Duration(i)*time.Second))
			if err != nil {
				return err
			}
			if got != st.want {
				t.Errorf("step %d: %s of %s: upsert %d, want %d", i, st.column, st.order, got, st.want)
			}
			return nil
		})
	}
	// The first time of each event is kept.
	var placed, cancelled time.Time
	if err := db.QueryRow(`SELECT placed_at, cancelled_at FROM orders WHERE order_id = 'o1'`).Scan(&placed, &cancelled); err != nil {
		t.Fatal(err)
	}
	if !placed.Equal(now) || !cancelled.Equal(now.Add(2*time.Second)) {
		t.Fatalf("o1 placed at %v, cancelled at %v; want %v and %v", placed, cancelled, now, now.Add(2*time.Second))
	}
}

// moveStock moves every line in one statement, and moves nothing when one line is not covered or
// its product is unknown (the statement changes fewer rows than lines: an error, the transaction
// rolls back).
func TestMoveStock(t *testing.T) {
	s, db := newTestStore(t)
	ctx := context.Background()
	addProduct(t, s, db, "a", 5)
	addProduct(t, s, db, "b", 2)
	addProduct(t, s, db, "c", 1)
	now := time.Now().UTC().Truncate(time.Millisecond)
	type want struct{ available, reserved, version int64 }
	check := func(step string, wants map[string]want) {
		t.Helper()
		for id, w := range wants {
			got := stockOf(t, s, id)
			if got.Available != w.available || got.Reserved != w.reserved || got.Version != w.version {
				t.Errorf("%s: %s is %d available, %d reserved at version %d; want %+v", step, id, got.Available, got.Reserved, got.Version, w)
			}
		}
	}
	before := map[string]want{"a": {5, 0, 2}, "b": {2, 0, 2}, "c": {1, 0, 2}}
	check("before", before)

	for name, lines := range map[string][]inventory.Line{
		"one line short":  {line("a", 1), line("b", 3)},
		"unknown product": {line("a", 1), line("ghost", 1)},
	} {
		err := tryTx(db, func(tx *sqlx.Tx) error { return moveStock(ctx, tx, lines, reserveStock, now) })
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		check(name, before)
	}

	inTx(t, db, func(tx *sqlx.Tx) error {
		return moveStock(ctx, tx, []inventory.Line{line("a", 2), line("b", 2), line("c", 1)}, reserveStock, now)
	})
	check("reserved", map[string]want{"a": {3, 2, 3}, "b": {0, 2, 3}, "c": {0, 1, 3}})
	if got := stockOf(t, s, "b"); !got.UpdatedAt.Equal(now) {
		t.Errorf("updated at %v, want %v", got.UpdatedAt, now)
	}

	inTx(t, db, func(tx *sqlx.Tx) error {
		return moveStock(ctx, tx, []inventory.Line{line("a", 2), line("c", 1)}, releaseStock, now)
	})
	check("released", map[string]want{"a": {5, 0, 4}, "b": {0, 2, 3}, "c": {1, 0, 4}})
	// Releasing more than is reserved breaks the CHECK constraint: nothing changes.
	if err := tryTx(db, func(tx *sqlx.Tx) error {
		return moveStock(ctx, tx, []inventory.Line{line("a", 1), line("b", 3)}, releaseStock, now)
	}); err == nil {
		t.Fatal("released more than reserved")
	}
	check("over-released", map[string]want{"a": {5, 0, 4}, "b": {0, 2, 3}, "c": {1, 0, 4}})
}
