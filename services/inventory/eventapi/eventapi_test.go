package eventapi

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
	"github.com/sagittarius-a/sagittarius/services/inventory/httpapi"
	"github.com/sagittarius-a/sagittarius/services/inventory/inventory"
	invmysql "github.com/sagittarius-a/sagittarius/services/inventory/mysql"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

type fixture struct {
	t     *testing.T
	db    *sqlx.DB
	store *invmysql.Store
	h     *Handlers
}

func newFixture(t *testing.T) *fixture {
	db := newTestDB(t)
	store, err := invmysql.NewStore(db, httpapi.NewRenderer(hal.MustBase("http://gw.test")), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, db: db, store: store, h: New(store, slog.New(slog.DiscardHandler))}
}

// deliver runs handler on ev in a transaction, as eventbus.HandleTx does (minus the inbox, so that a
// second delivery reaches the handler: the handler itself must be idempotent).
func deliver[T any](f *fixture, handler func(context.Context, *sqlx.Tx, eventbus.Event[T]) error, ev eventbus.Event[T]) {
	f.t.Helper()
	tx, err := f.db.Beginx()
	if err != nil {
		f.t.Fatal(err)
	}
	defer tx.Rollback()
	if err := handler(context.Background(), tx, ev); err != nil {
		f.t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		f.t.Fatal(err)
	}
}

func event[T any](entity T) eventbus.Event[T] {
	return eventbus.Event[T]{UUID: uuid.NewString(), FiredAt: time.Now().UTC(), Entity: entity, Attempt: 1}
}

func (f *fixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.db.Get(&n, query, args...); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) events(typ string) int {
	return f.count(`SELECT COUNT(*) FROM eventbus_outbox WHERE type = ?`, typ)
}

func (f *fixture) stock(id string) inventory.StockItem {
	f.t.Helper()
	it, err := f.store.StockItem(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return it
}

func order(id string, lines ...orderevents.Line) orderevents.Order {
	return orderevents.Order{ID: id, Status: orderevents.StatusPending, Lines: lines}
}

func TestEachEventTwiceChangesNothingTwice(t *testing.T) {
	f := newFixture(t)
	added := event(productevents.Product{ID: "p1", Name: "Lamp", Status: productevents.StatusActive})
	deliver(f, f.h.ProductAdded, added)
	deliver(f, f.h.ProductAdded, added)
	if n := f.count(`SELECT COUNT(*) FROM stock_items`); n != 1 {
		t.Fatalf("%d stock items", n)
	}
	if _, _, err := f.store.Replenish(context.Background(), "p1", 3); err != nil {
		t.Fatal(err)
	}

	placed := event(order("o1", orderevents.Line{ProductID: "p1", Quantity: 2}))
	deliver(f, f.h.OrderPlaced, placed)
	deliver(f, f.h.OrderPlaced, placed)
	// Also a republish of the same fact under a new uuid.
	deliver(f, f.h.OrderPlaced, event(placed.Entity))
	if it := f.stock("p1"); it.Available != 1 || it.Reserved != 2 {
		t.Fatalf("after order_placed x3: %+v", it)
	}
	if n := f.events(stockevents.StockReserved.Type()); n != 1 {
		t.Fatalf("%d stock_reserved", n)
	}

	cancelled := event(order("o1"))
	deliver(f, f.h.OrderCancelled, cancelled)
	deliver(f, f.h.OrderCancelled, cancelled)
	if it := f.stock("p1"); it.Available != 3 || it.Reserved != 0 {
		t.Fatalf("after order_cancelled x2: %+v", it)
	}
	if n := f.events(stockevents.StockReleased.Type()); n != 1 {
		t.Fatalf("%d stock_released", n)
	}

	// Placed again under another order, then dispatched twice: counted down once.
	deliver(f, f.h.OrderPlaced, event(order("o2", orderevents.Line{ProductID: "p1", Quantity: 2})))
	dispatched := event(shipmentevents.Shipment{ID: "s2", OrderID: "o2", Status: shipmentevents.StatusDispatched})
	deliver(f, f.h.ShipmentDispatched, dispatched)
	deliver(f, f.h.ShipmentDispatched, dispatched)
	deliver(f, f.h.ShipmentDispatched, event(dispatched.Entity))
	if it := f.stock("p1"); it.Available != 1 || it.Reserved != 0 || it.Shipped != 2 || it.Replenished != 3 {
		t.Fatalf("after shipment_dispatched x3: %+v", it)
	}
	if n := f.events(stockevents.StockShipped.Type()); n != 1 {
		t.Fatalf("%d stock_shipped", n)
	}

	retired := event(productevents.Product{ID: "p1", Name: "Lamp", Status: productevents.StatusRetired})
	deliver(f, f.h.ProductRetired, retired)
	deliver(f, f.h.ProductRetired, retired)
	deliver(f, f.h.ProductAdded, added) // late and out of order
	if it := f.stock("p1"); it.Status != inventory.ProductRetired {
		t.Fatalf("after product_retired: %+v", it)
	}
}

func TestOutOfStockAndEarlyCancellation(t *testing.T) {
	f := newFixture(t)
	deliver(f, f.h.ProductAdded, event(productevents.Product{ID: "p1", Name: "Lamp"}))
	if _, _, err := f.store.Replenish(context.Background(), "p1", 1); err != nil {
		t.Fatal(err)
	}
	deliver(f, f.h.OrderPlaced, event(order("o1", orderevents.Line{ProductID: "p1", Quantity: 2})))
	r, err := f.store.Reservation(context.Background(), "o1")
	if err != nil || r.Status != inventory.Rejected || r.Reason != inventory.ReasonOutOfStock {
		t.Fatalf("o1: %+v %v", r, err)
	}
	// Cancelled (compensation after rejection): nothing to release.
	deliver(f, f.h.OrderCancelled, event(order("o1")))
	if n := f.events(stockevents.StockReleased.Type()); n != 0 {
		t.Fatalf("%d stock_released for a rejected reservation", n)
	}

	// order_cancelled before order_placed.
	deliver(f, f.h.OrderCancelled, event(order("o2")))
	deliver(f, f.h.OrderPlaced, event(order("o2", orderevents.Line{ProductID: "p1", Quantity: 1})))
	r, err = f.store.Reservation(context.Background(), "o2")
	if err != nil || r.Status != inventory.Rejected || r.Reason != inventory.ReasonOrderCancelled {
		t.Fatalf("o2: %+v %v", r, err)
	}
	if it := f.stock("p1"); it.Available != 1 {
		t.Fatalf("stock %+v", it)
	}
	if n := f.events(stockevents.StockReservationRejected.Type()); n != 2 {
		t.Fatalf("%d rejections", n)
	}
}

func TestInvalidOrderIDIsPermanent(t *testing.T) {
	f := newFixture(t)
	tx, err := f.db.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	err = f.h.OrderPlaced(context.Background(), tx, event(order("")))
	var perm *eventbus.PermanentError
	if err == nil || !asPermanent(err, &perm) {
		t.Fatalf("err = %v, want a permanent error", err)
	}
}

func asPermanent(err error, target **eventbus.PermanentError) bool { return errors.As(err, target) }
