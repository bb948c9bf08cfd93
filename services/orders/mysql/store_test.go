package mysql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/orders/httpapi"
	"github.com/sagittarius-a/sagittarius/services/orders/order"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// newStore returns a Store on a fresh, migrated database with customer c1
// (active), c2 (suspended) and products p1, p2 (EUR) and p3 (retired).
func newStore(t *testing.T) *Store {
	t.Helper()
	db := servicetest.NewDatabase(t, 10, Migrations)
	s, err := NewStore(db, httpapi.NewRenderer(hal.MustBase("http://gw.test")).Order, nil)
	if err != nil {
		t.Fatal(err)
	}
	seed(t, s, func(ctx context.Context, tx *sqlx.Tx) error {
		return errors.Join(
			saveCustomer(ctx, tx, order.CustomerFact{ID: "c1", Active: true, Version: 1, FiredAt: t0}),
			saveCustomer(ctx, tx, order.CustomerFact{ID: "c2", Active: false, Version: 2, FiredAt: t0}),
			saveProduct(ctx, tx, order.ProductFact{ID: "p1", Name: "Mug", Active: true, Price: eur(1250), Version: 1, FiredAt: t0}),
			saveProduct(ctx, tx, order.ProductFact{ID: "p2", Name: "Tea", Active: true, Price: eur(399), Version: 1, FiredAt: t0}),
			saveProduct(ctx, tx, order.ProductFact{ID: "p3", Name: "Old", Retired: true, Price: eur(5), Version: 4, FiredAt: t0}),
		)
	})
	return s
}

func eur(n int64) *order.Money { return &order.Money{Amount: n, Currency: "EUR"} }

// seed runs fn in a transaction, as an event handler would.
func seed(t *testing.T, s *Store, fn func(ctx context.Context, tx *sqlx.Tx) error) {
	t.Helper()
	if err := s.inTx(context.Background(), func(tx *sqlx.Tx) error { return fn(context.Background(), tx) }); err != nil {
		t.Fatal(err)
	}
}

func input(customer string, lines ...order.LineInput) order.PlaceInput {
	if len(lines) == 0 {
		lines = []order.LineInput{{ProductID: "p1", Quantity: 2}, {ProductID: "p2", Quantity: 1}}
	}
	return order.PlaceInput{
		CustomerID: customer, Lines: lines, PaymentMethodID: "tok_visa",
		ShippingAddress: order.Address{Name: "Ada", Line1: "1 Main St", Line2: "Flat ü", PostalCode: "10115", City: "Berlin", Country: "DE"},
	}
}

// outbox returns the types of the events in the outbox, oldest first, and
// the order entity of each.
func outbox(t *testing.T, s *Store) ([]string, []orderevents.Order) {
	t.Helper()
	var rows []struct {
		Type string `db:"type"`
		Body []byte `db:"body"`
	}
	if err := s.db.Select(&rows, `SELECT type, body FROM eventbus_outbox ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	var types []string
	var orders []orderevents.Order
	for _, r := range rows {
		var payload struct {
			UUID  string            `json:"uuid"`
			Order orderevents.Order `json:"order"`
		}
		if err := json.Unmarshal(r.Body, &payload); err != nil {
			t.Fatal(err)
		}
		types = append(types, r.Type)
		orders = append(orders, payload.Order)
	}
	return types, orders
}

func TestPlaceOrder(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	placed, replayed, err := s.PlaceOrder(ctx, input("c1"), "")
	if err != nil || replayed {
		t.Fatalf("PlaceOrder: %v, replayed %v", err, replayed)
	}
	if placed.Status != "pending" || placed.Total.Amount != 2899 || placed.Version != 1 || len(placed.Lines) != 2 {
		t.Errorf("placed %+v", placed)
	}
	got, err := s.Order(ctx, placed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ShippingAddress.Line2 != "Flat ü" || got.Lines[1].ProductName != "Tea" || got.Lines[0].Quantity != 2 ||
		got.Total != (order.Money{Amount: 2899, Currency: "EUR"}) || !got.PlacedAt.Equal(placed.PlacedAt) {
		t.Errorf("read back %+v", got)
	}
	types, events := outbox(t, s)
	if len(types) != 1 || types[0] != "sales.orders.order_placed" {
		t.Fatalf("outbox %v", types)
	}
	if e := events[0]; e.ID != placed.ID || e.PaymentMethodID != "tok_visa" || e.Links.Href("self") != "http://gw.test/orders/v1/orders/"+placed.ID {
		t.Errorf("event entity %+v", e)
	}
	if _, err := s.Order(ctx, "nope"); !errors.Is(err, order.ErrNotFound) {
		t.Errorf("unknown order: %v", err)
	}
}

func TestPlaceOrderChecksReadModels(t *testing.T) {
	s := newStore(t)
	for name, in := range map[string]order.PlaceInput{
		"unknown customer":   input("c9"),
		"suspended customer": input("c2"),
		"unknown product":    input("c1", order.LineInput{ProductID: "p9", Quantity: 1}),
		"retired product":    input("c1", order.LineInput{ProductID: "p3", Quantity: 1}),
		"quantity":           input("c1", order.LineInput{ProductID: "p1", Quantity: 1001}),
	} {
		_, _, err := s.PlaceOrder(context.Background(), in, "key-"+name)
		var v *order.ValidationError
		if !errors.As(err, &v) {
			t.Errorf("%s: %v, want a validation error", name, err)
		}
	}
	if types, _ := outbox(t, s); len(types) != 0 {
		t.Errorf("outbox %v after rejected orders", types)
	}
	var n int
	if err := s.db.Get(&n, `SELECT (SELECT COUNT(*) FROM orders) + (SELECT COUNT(*) FROM idempotency_keys)`); err != nil || n != 0 {
		t.Errorf("%d rows left behind (%v)", n, err)
	}
	// A rejected key is free again once the request is fixed.
	if _, _, err := s.PlaceOrder(context.Background(), input("c1"), "key-unknown customer"); err != nil {
		t.Errorf("retry with fixed request: %v", err)
	}
}

func TestPlaceOrderIdempotencyKey(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	first, _, err := s.PlaceOrder(ctx, input("c1"), "k1")
	if err != nil {
		t.Fatal(err)
	}
	again, replayed, err := s.PlaceOrder(ctx, input("c1"), "k1")
	if err != nil || !replayed {
		t.Fatalf("replay: %v, replayed %v", err, replayed)
	}
	a, _ := json.Marshal(first)
	b, _ := json.Marshal(again)
	if string(a) != string(b) {
		t.Errorf("replay differs:\n%s\n%s", a, b)
	}
	other := input("c1", order.LineInput{ProductID: "p1", Quantity: 3})
	if _, _, err := s.PlaceOrder(ctx, other, "k1"); !errors.Is(err, order.ErrKeyReused) {
		t.Errorf("reused key: %v", err)
	}
	// The replay is the first answer even after the order moved on.
	if _, err := s.CancelOrder(ctx, first.ID, nil); err != nil {
		t.Fatal(err)
	}
	late, _, err := s.PlaceOrder(ctx, input("c1"), "k1")
	if err != nil || late.Status != "pending" || late.Version != 1 {
		t.Errorf("late replay: %+v %v", late, err)
	}
	if types, _ := outbox(t, s); fmt.Sprint(types) != "[sales.orders.order_placed sales.orders.order_cancelled]" {
		t.Errorf("outbox %v", types)
	}
}

func TestPurgeIdempotencyKeys(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	first, _, err := s.PlaceOrder(ctx, input("c1"), "old-key")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeIdempotencyKeys(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("purge of older keys: %d %v", n, err)
	}
	if n, err := s.PurgeIdempotencyKeys(ctx, time.Now().Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	again, replayed, err := s.PlaceOrder(ctx, input("c1"), "old-key")
	if err != nil || replayed || again.ID == first.ID {
		t.Errorf("after purge: %v replayed=%v same=%v", err, replayed, again.ID == first.ID)
	}
}

func TestPlaceOrderConcurrentSameKey(t *testing.T) {
	s := newStore(t)
	const n = 10
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var o orderevents.Order
			o, _, errs[i] = s.PlaceOrder(context.Background(), input("c1"), "same-key")
			ids[i] = o.ID
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Errorf("request %d: id %s, err %v; want id %s", i, ids[i], errs[i], ids[0])
		}
	}
	if types, _ := outbox(t, s); len(types) != 1 {
		t.Errorf("outbox %v, want one order_placed", types)
	}
}

func TestOrders(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	s.now = func() time.Time { return t0 }
	var ids []string
	for i := range 5 {
		s.now = func() time.Time { return t0.Add(time.Duration(i) * time.Minute) }
		o, _, err := s.PlaceOrder(ctx, input("c1"), "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID)
	}
	if _, err := s.CancelOrder(ctx, ids[1], nil); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		f     order.Filter
		want  []string
		total int
	}{
		{order.Filter{}, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}, 5},
		{order.Filter{Limit: 2, Offset: 2}, []string{ids[2], ids[1]}, 5},
		{order.Filter{Limit: 2, Offset: 10}, nil, 5},
		{order.Filter{Status: order.StatusCancelled}, []string{ids[1]}, 1},
		{order.Filter{CustomerID: "c1", Status: order.StatusPending, Limit: 1}, []string{ids[4]}, 4},
		{order.Filter{CustomerID: "c2"}, nil, 0},
	} {
		got, total, err := s.Orders(ctx, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs []string
		for _, o := range got {
			gotIDs = append(gotIDs, o.ID)
			if len(o.Lines) != 2 {
				t.Errorf("order %s has %d lines", o.ID, len(o.Lines))
			}
		}
		if fmt.Sprint(gotIDs) != fmt.Sprint(tt.want) || total != tt.total {
			t.Errorf("%+v: %v (total %d), want %v (total %d)", tt.f, gotIDs, total, tt.want, tt.total)
		}
	}
}

func TestCancelOrder(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	o, _, err := s.PlaceOrder(ctx, input("c1"), "")
	if err != nil {
		t.Fatal(err)
	}
	stale := func(v int64) bool { return v == 99 }
	if _, err := s.CancelOrder(ctx, o.ID, stale); !errors.Is(err, order.ErrVersionMismatch) {
		t.Errorf("stale If-Match: %v", err)
	}
	if _, err := s.CancelOrder(ctx, "nope", nil); !errors.Is(err, order.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	got, err := s.CancelOrder(ctx, o.ID, func(v int64) bool { return v == 1 })
	if err != nil || got.Status != order.StatusCancelled || got.Version != 2 || got.CancellationReason != order.ReasonCustomerRequested {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	if _, err := s.CancelOrder(ctx, o.ID, nil); !errors.Is(err, order.ErrNotCancellable) {
		t.Errorf("second cancel: %v", err)
	}
	types, events := outbox(t, s)
	if len(types) != 2 || types[1] != "sales.orders.order_cancelled" || events[1].CancellationReason != "customer_requested" {
		t.Errorf("outbox %v %+v", types, events)
	}
}

// step runs one saga step the way a handler does: in its own transaction.
func step(t *testing.T, s *Store, orderID string, apply func(o *order.Order, now time.Time) bool) error {
	t.Helper()
	return s.inTx(context.Background(), func(tx *sqlx.Tx) error {
		return s.Step(context.Background(), tx, orderID, apply)
	})
}

func TestSagaHappyPath(t *testing.T) {
	s := newStore(t)
	o, _, err := s.PlaceOrder(context.Background(), input("c1"), "")
	if err != nil {
		t.Fatal(err)
	}
	confirm := func(o *order.Order, now time.Time) bool { return o.Confirm("pay1", now) }
	schedule := func(o *order.Order, now time.Time) bool { return o.AttachShipment("s1", now) }
	ship := func(o *order.Order, now time.Time) bool { return o.Ship("s1", now) }
	deliver := func(o *order.Order, now time.Time) bool { return o.Deliver("s1", now) }
	// Each step twice (as if the publisher had sent it twice with new
	// uuids), and a late dispatch after delivery: nothing happens twice.
	for _, f := range []func(*order.Order, time.Time) bool{confirm, confirm, schedule, schedule, ship, deliver, deliver, ship} {
		if err := step(t, s, o.ID, f); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Order(context.Background(), o.ID)
	if err != nil {
		t.Fatal(err)
	}
	// versions: 1 placed, 2 confirmed, 3 shipment id, 4 shipped, 5 delivered
	if got.Status != order.StatusDelivered || got.PaymentID != "pay1" || got.ShipmentID != "s1" || got.Version != 5 {
		t.Errorf("order %+v", got)
	}
	types, events := outbox(t, s)
	want := "[sales.orders.order_placed sales.orders.order_confirmed sales.orders.order_shipped sales.orders.order_delivered]"
	if fmt.Sprint(types) != want {
		t.Errorf("outbox %v, want %s", types, want)
	}
	if last := events[len(events)-1]; last.Links.Href("payment") != "http://gw.test/payments/v1/payments/pay1" ||
		last.Links.Href("shipment") != "http://gw.test/shipping/v1/shipments/s1" {
		t.Errorf("links of order_delivered: %+v", last.Links)
	}
}

func TestSagaCancellations(t *testing.T) {
	for _, tt := range []struct {
		name   string
		steps  []func(o *order.Order, now time.Time) bool
		reason order.Reason
		events int
	}{
		{"out of stock", []func(*order.Order, time.Time) bool{
			func(o *order.Order, now time.Time) bool { return o.Reject(order.ReasonOutOfStock, "", now) },
		}, order.ReasonOutOfStock, 2},
		{"payment declined", []func(*order.Order, time.Time) bool{
			func(o *order.Order, now time.Time) bool { return o.Reject(order.ReasonPaymentDeclined, "pay1", now) },
			func(o *order.Order, now time.Time) bool { return o.Confirm("pay1", now) }, // a confused late capture
		}, order.ReasonPaymentDeclined, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			o, _, err := s.PlaceOrder(context.Background(), input("c1"), "")
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.steps {
				if err := step(t, s, o.ID, f); err != nil {
					t.Fatal(err)
				}
			}
			got, _ := s.Order(context.Background(), o.ID)
			if got.Status != order.StatusCancelled || got.CancellationReason != tt.reason {
				t.Errorf("order %+v", got)
			}
			if types, _ := outbox(t, s); len(types) != tt.events || types[1] != "sales.orders.order_cancelled" {
				t.Errorf("outbox %v", types)
			}
		})
	}
}

func TestSagaUnknownOrderIsPermanent(t *testing.T) {
	s := newStore(t)
	err := step(t, s, "nope", func(o *order.Order, now time.Time) bool { return o.Confirm("pay1", now) })
	var perm *eventbus.PermanentError
	if !errors.As(err, &perm) || !errors.Is(err, order.ErrNotFound) {
		t.Errorf("got %v, want a permanent not-found error", err)
	}
}

func TestReadModels(t *testing.T) {
	s := newStore(t)
	customer := func(id string) *order.Customer {
		var c *order.Customer
		seed(t, s, func(ctx context.Context, tx *sqlx.Tx) (err error) { c, err = loadCustomer(ctx, tx, id); return err })
		return c
	}
	product := func(id string) order.Product {
		var ps map[string]order.Product
		seed(t, s, func(ctx context.Context, tx *sqlx.Tx) (err error) {
			ps, err = loadProducts(ctx, tx, []string{id})
			return err
		})
		return ps[id]
	}
	save := func(c order.CustomerFact) {
		seed(t, s, func(ctx context.Context, tx *sqlx.Tx) error { return saveCustomer(ctx, tx, c) })
	}
	saveP := func(p order.ProductFact) {
		seed(t, s, func(ctx context.Context, tx *sqlx.Tx) error { return saveProduct(ctx, tx, p) })
	}
	save(order.CustomerFact{ID: "c1", Active: false, Version: 3, FiredAt: t0}) // suspended at version 3
	save(order.CustomerFact{ID: "c1", Active: true, Version: 2, FiredAt: t0.Add(time.Hour)})
	if c := customer("c1"); c == nil || c.Active {
		t.Errorf("a stale update revived the customer: %+v", c)
	}
	save(order.CustomerFact{ID: "c1", Active: true, Version: 4, FiredAt: t0})
	if c := customer("c1"); !c.Active {
		t.Error("a newer update was ignored")
	}
	save(order.CustomerFact{ID: "c1", Removed: true, Version: 5, FiredAt: t0})
	save(order.CustomerFact{ID: "c1", Active: true, Version: 6, FiredAt: t0})
	if c := customer("c1"); c.Active {
		t.Error("a removed customer came back")
	}
	save(order.CustomerFact{ID: "c7", Removed: true, Version: 9, FiredAt: t0}) // removal seen first
	save(order.CustomerFact{ID: "c7", Active: true, Version: 1, FiredAt: t0})
	if c := customer("c7"); c == nil || c.Active {
		t.Errorf("removal seen first: %+v", c)
	}
	if customer("c404") != nil {
		t.Error("unknown customer found")
	}

	saveP(order.ProductFact{ID: "p1", Name: "Big mug", Active: true, Price: eur(1500), Version: 2, FiredAt: t0})
	saveP(order.ProductFact{ID: "p1", Name: "Mug", Active: true, Price: eur(1250), Version: 1, FiredAt: t0})
	if p := product("p1"); p.Name != "Big mug" || p.Price.Amount != 1500 || !p.Active {
		t.Errorf("product %+v", p)
	}
	saveP(order.ProductFact{ID: "p1", Retired: true, Version: 3, FiredAt: t0})
	saveP(order.ProductFact{ID: "p1", Name: "Mug", Active: true, Price: eur(1), Version: 4, FiredAt: t0})
	if p := product("p1"); p.Active {
		t.Error("a retired product came back")
	}
	saveP(order.ProductFact{ID: "p8", Name: "Free", Active: true, Version: 1, FiredAt: t0})
	if p := product("p8"); p.Price != nil {
		t.Errorf("unpriced product has price %+v", p.Price)
	}
	// Placement sees the read models.
	save(order.CustomerFact{ID: "c5", Active: true, Version: 1, FiredAt: t0})
	saveP(order.ProductFact{ID: "p2", Name: "Tea", Active: true, Price: eur(450), Version: 2, FiredAt: t0})
	o, _, err := s.PlaceOrder(context.Background(), input("c5", order.LineInput{ProductID: "p2", Quantity: 1}), "")
	if err != nil || o.Total.Amount != 450 {
		t.Errorf("placement after read-model changes: %+v %v", o.Total, err)
	}
}
