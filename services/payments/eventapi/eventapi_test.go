package eventapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/payments/httpapi"
	paymysql "github.com/sagittarius-a/sagittarius/services/payments/mysql"
	"github.com/sagittarius-a/sagittarius/services/payments/payment"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
	"github.com/sagittarius-a/sagittarius/services/payments/simulator"
)

type fixture struct {
	t     *testing.T
	db    *sqlx.DB
	store *paymysql.Store
	h     *Handlers
}

func newFixture(t *testing.T) *fixture {
	db := newTestDB(t)
	store, err := paymysql.NewStore(db, httpapi.NewRenderer(hal.MustBase("http://gw.test")))
	if err != nil {
		t.Fatal(err)
	}
	// The payment methods the tests' orders name: customer c1's, with the
	// simulator's tokens as their ids (placed), and one of customer c2.
	for _, m := range []payment.Method{
		{ID: "tok_visa", CustomerID: "c1", Token: "tok_visa"},
		{ID: simulator.DeclineToken, CustomerID: "c1", Token: simulator.DeclineToken},
		{ID: "m-of-c2", CustomerID: "c2", Token: "tok_visa"},
	} {
		m.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
		if err := store.AddMethod(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{t: t, db: db, store: store, h: New(store, simulator.Provider{}, slog.New(slog.DiscardHandler))}
}

// deliver runs handler on ev in a transaction, as eventbus.HandleTx does (minus the inbox, so that a
// second delivery reaches the handler: the handler itself must be idempotent).
func deliver[T any](f *fixture, handler func(context.Context, *sqlx.Tx, eventbus.Event[T]) error, ev eventbus.Event[T]) {
	f.t.Helper()
	if err := tryDeliver(f.db, handler, ev); err != nil {
		f.t.Fatal(err)
	}
}

func tryDeliver[T any](db *sqlx.DB, handler func(context.Context, *sqlx.Tx, eventbus.Event[T]) error, ev eventbus.Event[T]) error {
	tx, err := db.Beginx()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := handler(context.Background(), tx, ev); err != nil {
		return err
	}
	return tx.Commit()
}

func event[T any](entity T) eventbus.Event[T] {
	return eventbus.Event[T]{UUID: uuid.NewString(), FiredAt: time.Now().UTC(), Entity: entity, Attempt: 1}
}

// placed is order_placed of customer c1 paying with the method methodID.
func placed(id, methodID string, amount int64) eventbus.Event[orderevents.Order] {
	return event(orderevents.Order{ID: id, CustomerID: "c1", Status: orderevents.StatusPending, PaymentMethodID: methodID,
		Total: orderevents.Money{Amount: amount, Currency: "EUR"}})
}

func reserved(id string) eventbus.Event[stockevents.Reservation] {
	return event(stockevents.Reservation{OrderID: id, Status: stockevents.ReservationHeld})
}

func cancelled(id string) eventbus.Event[orderevents.Order] {
	return event(orderevents.Order{ID: id, Status: orderevents.StatusCancelled})
}

// events returns the entities of the outbox events of type typ.
func (f *fixture) events(typ string) []paymentevents.Payment {
	f.t.Helper()
	var bodies [][]byte
	if err := f.db.Select(&bodies, `SELECT body FROM eventbus_outbox WHERE type = ? ORDER BY created_at`, typ); err != nil {
		f.t.Fatal(err)
	}
	var out []paymentevents.Payment
	for _, b := range bodies {
		var env struct {
			Payment paymentevents.Payment `json:"payment"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, env.Payment)
	}
	return out
}

func (f *fixture) paymentOf(orderID string) *payment.Payment {
	f.t.Helper()
	ps, _, err := f.store.Payments(context.Background(), payment.Filter{OrderID: orderID}, 10, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(ps) > 1 {
		f.t.Fatalf("%d payments for order %s", len(ps), orderID)
	}
	if len(ps) == 0 {
		return nil
	}
	return &ps[0]
}

func TestCaptureThenRefundEachEventTwice(t *testing.T) {
	f := newFixture(t)
	p, r, c := placed("o1", "tok_visa", 2599), reserved("o1"), cancelled("o1")
	deliver(f, f.h.OrderPlaced, p)
	if f.paymentOf("o1") != nil {
		t.Fatal("charged before the stock was reserved")
	}
	deliver(f, f.h.StockReserved, r)
	deliver(f, f.h.StockReserved, r)
	deliver(f, f.h.StockReserved, reserved("o1")) // republished under a new uuid
	deliver(f, f.h.OrderPlaced, p)
	pay := f.paymentOf("o1")
	if pay == nil || pay.Status != payment.Captured || pay.Amount != (payment.Money{Amount: 2599, Currency: "EUR"}) || pay.CapturedAt == nil {
		t.Fatalf("payment %+v", pay)
	}
	captured := f.events(paymentevents.PaymentCaptured.Type())
	if len(captured) != 1 || captured[0].ID != pay.ID || captured[0].Links.Href("order") != "http://gw.test/orders/v1/orders/o1" ||
		captured[0].Links.Href("self") != "http://gw.test/payments/v1/payments/"+pay.ID {
		t.Fatalf("payment_captured events %+v", captured)
	}

	deliver(f, f.h.OrderCancelled, c)
	deliver(f, f.h.OrderCancelled, c)
	deliver(f, f.h.OrderCancelled, cancelled("o1"))
	deliver(f, f.h.StockReserved, r) // late duplicate after cancellation
	pay = f.paymentOf("o1")
	if pay.Status != payment.Refunded || pay.RefundedAt == nil || pay.RefundReference == "" || pay.Version != 2 {
		t.Fatalf("refunded payment %+v", pay)
	}
	refunded := f.events(paymentevents.PaymentRefunded.Type())
	if len(refunded) != 1 || refunded[0].Status != "refunded" || refunded[0].RefundedAt == nil {
		t.Fatalf("payment_refunded events %+v", refunded)
	}
	if n := len(f.events(paymentevents.PaymentCaptured.Type())); n != 1 {
		t.Fatalf("%d payment_captured", n)
	}
}

func TestStockReservedBeforeOrderPlaced(t *testing.T) {
	f := newFixture(t)
	deliver(f, f.h.StockReserved, reserved("o1"))
	if f.paymentOf("o1") != nil {
		t.Fatal("charged an order whose amount is unknown")
	}
	deliver(f, f.h.OrderPlaced, placed("o1", "tok_visa", 100))
	if pay := f.paymentOf("o1"); pay == nil || pay.Status != payment.Captured || pay.Amount.Amount != 100 {
		t.Fatalf("payment %+v", pay)
	}
}

func TestDeclined(t *testing.T) {
	f := newFixture(t)
	deliver(f, f.h.OrderPlaced, placed("o1", simulator.DeclineToken, 100))
	deliver(f, f.h.StockReserved, reserved("o1"))
	pay := f.paymentOf("o1")
	if pay == nil || pay.Status != payment.Declined || pay.Reason != "card_declined" || pay.DeclinedAt == nil {
		t.Fatalf("payment %+v", pay)
	}
	declined := f.events(paymentevents.PaymentDeclined.Type())
	if len(declined) != 1 || declined[0].Reason != "card_declined" {
		t.Fatalf("payment_declined events %+v", declined)
	}
	// The order is then cancelled: nothing to refund.
	deliver(f, f.h.OrderCancelled, cancelled("o1"))
	if pay := f.paymentOf("o1"); pay.Status != payment.Declined {
		t.Fatalf("payment %+v", pay)
	}
	if n := len(f.events(paymentevents.PaymentRefunded.Type())); n != 0 {
		t.Fatalf("%d refunds of a declined payment", n)
	}
}

func TestCancelledOrderIsNotCharged(t *testing.T) {
	f := newFixture(t)
	deliver(f, f.h.OrderPlaced, placed("o1", "tok_visa", 100))
	deliver(f, f.h.OrderCancelled, cancelled("o1"))
	deliver(f, f.h.StockReserved, reserved("o1"))
	// Cancelled before it was even seen placed.
	deliver(f, f.h.OrderCancelled, cancelled("o2"))
	deliver(f, f.h.StockReserved, reserved("o2"))
	deliver(f, f.h.OrderPlaced, placed("o2", "tok_visa", 100))
	if f.paymentOf("o1") != nil || f.paymentOf("o2") != nil {
		t.Fatal("charged a cancelled order")
	}
	if n := len(f.events(paymentevents.PaymentCaptured.Type())); n != 0 {
		t.Fatalf("%d captures", n)
	}
}

// TestConcurrentDeliveries handles order_placed and stock_reserved of many orders at once, each
// delivered twice: every order is charged exactly once.
func TestConcurrentDeliveries(t *testing.T) {
	f := newFixture(t)
	const orders = 10
	var wg sync.WaitGroup
	errs := make(chan error, orders*4)
	for i := range orders {
		id := fmt.Sprintf("o%d", i)
		p, r := placed(id, "tok_visa", 100), reserved(id)
		for range 2 {
			wg.Go(func() { errs <- retry(func() error { return tryDeliver(f.db, f.h.OrderPlaced, p) }) })
			wg.Go(func() { errs <- retry(func() error { return tryDeliver(f.db, f.h.StockReserved, r) }) })
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.events(paymentevents.PaymentCaptured.Type())); n != orders {
		t.Fatalf("%d captures for %d orders", n, orders)
	}
}

// retry retries f on deadlocks and duplicate keys as the bus would redeliver.
func retry(f func() error) error {
	var err error
	for try := 0; try < 10; try++ {
		if err = f(); err == nil {
			return nil
		}
		time.Sleep(time.Duration(try+1) * 10 * time.Millisecond)
	}
	return err
}

// TestAnotherCustomersMethodIsDeclined: an order naming a payment method of
// another customer, or an unknown one, is declined as an invalid token.
func TestAnotherCustomersMethodIsDeclined(t *testing.T) {
	for _, method := range []string{"m-of-c2", "no-such-method"} {
		f := newFixture(t)
		deliver(f, f.h.OrderPlaced, placed("o1", method, 100))
		deliver(f, f.h.StockReserved, reserved("o1"))
		p, _, err := f.store.Payments(context.Background(), payment.Filter{OrderID: "o1"}, 10, 0)
		if err != nil || len(p) != 1 || p[0].Status != payment.Declined || p[0].Reason != simulator.ReasonInvalidToken {
			t.Fatalf("%s: %+v %v", method, p, err)
		}
	}
}
