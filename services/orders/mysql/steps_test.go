package mysql

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
	"github.com/sagittarius-a/sagittarius/services/orders/eventapi"
	"github.com/sagittarius-a/sagittarius/services/orders/order"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

// runBus starts a bus for service in vhost (admin URL) and returns it once
// it is connected; it stops when the test ends. register adds handlers
// before it starts.
func runBus(t *testing.T, url, service string, publishes []eventbus.EventInfoer, register func(*eventbus.Bus) error) *eventbus.Bus {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := eventbus.New(eventbus.Config{URL: url, Service: service, Logger: logger, RetryDelays: []time.Duration{100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publishes(publishes...); err != nil {
		t.Fatal(err)
	}
	if register != nil {
		if err := register(b); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("bus %s: %v", service, err)
		}
	})
	eventually(t, 10*time.Second, "bus "+service+" connected", func() bool { return b.Healthy() == nil })
	return b
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func publish[T any](t *testing.T, b *eventbus.Bus, et eventbus.EventType[T], entity T) eventbus.Message {
	t.Helper()
	msg, err := et.New(context.Background(), entity)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestHandlersOverTheBus delivers every consumed event type through a real
// broker, each one twice with the same uuid, and checks that each changed
// the order once and caused at most one event.
func TestHandlersOverTheBus(t *testing.T) {
	url, vhost := testinfra.NewVhost(t)
	testinfra.DeclareExchange(t, vhost)
	s := newStore(t)
	orders := runBus(t, url, orderevents.Service, orderevents.All, func(b *eventbus.Bus) error { return eventapi.New(s, nil).Register(b, s.db) })

	crm := runBus(t, url, customerevents.Service, customerevents.All, nil)
	catalog := runBus(t, url, productevents.Service, productevents.All, nil)
	inventory := runBus(t, url, stockevents.Service, []eventbus.EventInfoer{stockevents.StockReservationRejected}, nil)
	payments := runBus(t, url, paymentevents.Service, paymentevents.All, nil)
	shipping := runBus(t, url, shipmentevents.Service, shipmentevents.All, nil)

	twice := func(b *eventbus.Bus, msg eventbus.Message) {
		t.Helper()
		if err := b.Publish(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	handled := func(n uint64) {
		t.Helper()
		eventually(t, 10*time.Second, "deliveries handled", func() bool { return orders.Stats().Handled >= n })
	}
	newMsg := func(m eventbus.Message, err error) eventbus.Message {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ctx := context.Background()

	// Read models: a new customer and a new product, each twice.
	twice(crm, newMsg(customerevents.CustomerRegistered.New(ctx, customerevents.Customer{ID: "c-bus", Status: "active", Version: 1})))
	twice(catalog, newMsg(productevents.ProductAdded.New(ctx, productevents.Product{ID: "p-bus", Name: "Bus", Status: "active",
		Price: productevents.Money{Amount: 700, Currency: "EUR"}, Version: 1})))
	handled(4)
	placed, _, err := s.PlaceOrder(ctx, input("c-bus", order.LineInput{ProductID: "p-bus", Quantity: 3}), "")
	if err != nil {
		t.Fatalf("place after read models were fed over the bus: %v", err)
	}
	if placed.Total.Amount != 2100 {
		t.Errorf("total %+v", placed.Total)
	}
	declined, _, err := s.PlaceOrder(ctx, input("c-bus", order.LineInput{ProductID: "p-bus", Quantity: 1}), "")
	if err != nil {
		t.Fatal(err)
	}
	rejected, _, err := s.PlaceOrder(ctx, input("c-bus", order.LineInput{ProductID: "p-bus", Quantity: 2}), "")
	if err != nil {
		t.Fatal(err)
	}

	ship := shipmentevents.Shipment{ID: "s-bus", OrderID: placed.ID}
	steps := []struct {
		b   *eventbus.Bus
		msg eventbus.Message
	}{
		{payments, newMsg(paymentevents.PaymentCaptured.New(ctx, paymentevents.Payment{ID: "pay-bus", OrderID: placed.ID, Status: "captured"}))},
		{shipping, newMsg(shipmentevents.ShipmentScheduled.New(ctx, ship))},
		{shipping, newMsg(shipmentevents.ShipmentDispatched.New(ctx, ship))},
		{shipping, newMsg(shipmentevents.ShipmentDelivered.New(ctx, ship))},
		{payments, newMsg(paymentevents.PaymentDeclined.New(ctx, paymentevents.Payment{ID: "pay-2", OrderID: declined.ID, Status: "declined"}))},
		{inventory, newMsg(stockevents.StockReservationRejected.New(ctx, stockevents.Reservation{OrderID: rejected.ID, Status: "rejected", Reason: "out_of_stock"}))},
	}
	want := uint64(4)
	for _, st := range steps {
		twice(st.b, st.msg)
		want += 2
		handled(want) // in order: each step before the next
	}
	if d := orders.Stats().Duplicates; d < 5 {
		t.Errorf("the inbox skipped %d duplicates, want at least 5", d)
	}
	for id, status := range map[string]order.Status{placed.ID: order.StatusDelivered, declined.ID: order.StatusCancelled, rejected.ID: order.StatusCancelled} {
		o, err := s.Order(ctx, id)
		if err != nil || o.Status != status {
			t.Errorf("order %s: %+v %v; want %s", id, o, err, status)
		}
	}
	o, _ := s.Order(ctx, placed.ID)
	if o.Version != 5 || o.PaymentID != "pay-bus" || o.ShipmentID != "s-bus" {
		t.Errorf("delivered order: %+v", o)
	}
	types, _ := outbox(t, s)
	count := map[string]int{}
	for _, ty := range types {
		count[ty]++
	}
	for ty, n := range map[string]int{"sales.orders.order_placed": 3, "sales.orders.order_confirmed": 1, "sales.orders.order_shipped": 1,
		"sales.orders.order_delivered": 1, "sales.orders.order_cancelled": 2} {
		if count[ty] != n {
			t.Errorf("%d %s in the outbox, want %d (all: %v)", count[ty], ty, n, count)
		}
	}
}

// TestDeliveredBeforeDispatched delivers shipment_delivered before
// shipment_dispatched (as a retried dispatch can arrive late): the order
// still announces order_shipped, then order_delivered, each once, and the
// late dispatch changes nothing.
func TestDeliveredBeforeDispatched(t *testing.T) {
	url, vhost := testinfra.NewVhost(t)
	testinfra.DeclareExchange(t, vhost)
	s := newStore(t)
	orders := runBus(t, url, orderevents.Service, orderevents.All, func(b *eventbus.Bus) error { return eventapi.New(s, nil).Register(b, s.db) })
	crm := runBus(t, url, customerevents.Service, customerevents.All, nil)
	catalog := runBus(t, url, productevents.Service, productevents.All, nil)
	payments := runBus(t, url, paymentevents.Service, paymentevents.All, nil)
	shipping := runBus(t, url, shipmentevents.Service, shipmentevents.All, nil)
	ctx := context.Background()
	handled := func(n uint64) {
		t.Helper()
		eventually(t, 10*time.Second, "deliveries handled", func() bool { return orders.Stats().Handled >= n })
	}

	publish(t, crm, customerevents.CustomerRegistered, customerevents.Customer{ID: "c-late", Status: "active", Version: 1})
	publish(t, catalog, productevents.ProductAdded, productevents.Product{ID: "p-late", Name: "Late", Status: "active",
		Price: productevents.Money{Amount: 100, Currency: "EUR"}, Version: 1})
	handled(2)
	placed, _, err := s.PlaceOrder(ctx, input("c-late", order.LineInput{ProductID: "p-late", Quantity: 1}), "")
	if err != nil {
		t.Fatal(err)
	}
	ship := shipmentevents.Shipment{ID: "s-late", OrderID: placed.ID}
	publish(t, payments, paymentevents.PaymentCaptured, paymentevents.Payment{ID: "pay-late", OrderID: placed.ID, Status: "captured"})
	handled(3)
	publish(t, shipping, shipmentevents.ShipmentScheduled, ship)
	handled(4)
	publish(t, shipping, shipmentevents.ShipmentDelivered, ship)
	handled(5)
	publish(t, shipping, shipmentevents.ShipmentDispatched, ship)
	handled(6)

	o, err := s.Order(ctx, placed.ID)
	if err != nil || o.Status != order.StatusDelivered || o.ShipmentID != "s-late" {
		t.Fatalf("order: %+v %v; want delivered with shipment s-late", o, err)
	}
	types, _ := outbox(t, s)
	count := map[string]int{}
	for _, ty := range types {
		count[ty]++
	}
	for ty, n := range map[string]int{"sales.orders.order_placed": 1, "sales.orders.order_confirmed": 1,
		"sales.orders.order_shipped": 1, "sales.orders.order_delivered": 1} {
		if count[ty] != n {
			t.Errorf("%d %s in the outbox, want %d (all: %v)", count[ty], ty, n, count)
		}
	}
}
