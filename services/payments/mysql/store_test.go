package mysql

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	"github.com/sagittarius-a/sagittarius/services/payments/payment"
)

// inTx runs f in a transaction and commits it.
func inTx(t *testing.T, db *sqlx.DB, f func(tx *sqlx.Tx) error) {
	t.Helper()
	tx, err := db.BeginTxx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := f(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

type recorded struct {
	order   payment.Order
	payment *payment.Payment
}

// record runs a Record method in a transaction and returns what it returned and, read back in the
// same transaction after it, what is stored.
func record(t *testing.T, db *sqlx.DB, s *Store, f func(tx *sqlx.Tx) (payment.Order, *payment.Payment, error)) (got, stored recorded) {
	t.Helper()
	inTx(t, db, func(tx *sqlx.Tx) error {
		var err error
		if got.order, got.payment, err = f(tx); err != nil {
			return err
		}
		stored.order, stored.payment, err = s.readOrder(context.Background(), tx, got.order.ID)
		return err
	})
	return got, stored
}

func samePayment(a, b *payment.Payment) bool {
	if a == nil || b == nil {
		return a == b
	}
	at := func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	}
	x, y := *a, *b
	if !at(x.CapturedAt).Equal(at(y.CapturedAt)) || !at(x.DeclinedAt).Equal(at(y.DeclinedAt)) || !at(x.RefundedAt).Equal(at(y.RefundedAt)) ||
		!x.CreatedAt.Equal(y.CreatedAt) {
		return false
	}
	x.CapturedAt, x.DeclinedAt, x.RefundedAt, x.CreatedAt = nil, nil, nil, time.Time{}
	y.CapturedAt, y.DeclinedAt, y.RefundedAt, y.CreatedAt = nil, nil, nil, time.Time{}
	return x == y
}

// Each Record method returns the order as stored, with its payment as stored, whether its upsert
// inserted the order's row (then nothing is read back) or found it (then it is read with its
// payment in one statement).
func TestRecordReturnsTheOrderAsStored(t *testing.T) {
	s, db := newTestStore(t)
	ctx := context.Background()
	placedO := func(id string, amount int64, currency, token string) func(tx *sqlx.Tx) (payment.Order, *payment.Payment, error) {
		return func(tx *sqlx.Tx) (payment.Order, *payment.Payment, error) {
			return s.RecordOrderPlaced(ctx, tx, payment.Order{ID: id, Total: payment.Money{Amount: amount, Currency: currency}, PaymentToken: token})
		}
	}
	reserved := func(id string) func(tx *sqlx.Tx) (payment.Order, *payment.Payment, error) {
		return func(tx *sqlx.Tx) (payment.Order, *payment.Payment, error) { return s.RecordStockReserved(ctx, tx, id) }
	}
	cancelled := func(id string) func(tx *sqlx.Tx) (payment.Order, *payment.Payment, error) {
		return func(tx *sqlx.Tx) (payment.Order, *payment.Payment, error) { return s.RecordOrderCancelled(ctx, tx, id) }
	}
	longToken := strings.Repeat("t", 300)
	steps := []struct {
		name   string
		record func(tx *sqlx.Tx) (payment.Order, *payment.Payment, error)
		want   payment.Order
	}{
		// Inserted rows: values cut like the columns cut them.
		{"o1 placed", placedO("o1", 2599, "EUR-TOO-LONG-CURRENCY", longToken),
			payment.Order{ID: "o1", Total: payment.Money{Amount: 2599, Currency: "EUR-TOO-LONG-CUR"}, PaymentToken: longToken[:255], Placed: true}},
		{"o2 reserved", reserved("o2"), payment.Order{ID: "o2", StockReserved: true}},
		{"o3 cancelled", cancelled("o3"), payment.Order{ID: "o3", Cancelled: true}},
		// Existing rows, changed or not.
		{"o1 placed again", placedO("o1", 1, "USD", "other"),
			payment.Order{ID: "o1", Total: payment.Money{Amount: 2599, Currency: "EUR-TOO-LONG-CUR"}, PaymentToken: longToken[:255], Placed: true}},
		{"o1 reserved", reserved("o1"),
			payment.Order{ID: "o1", Total: payment.Money{Amount: 2599, Currency: "EUR-TOO-LONG-CUR"}, PaymentToken: longToken[:255], Placed: true, StockReserved: true}},
		{"o2 placed", placedO("o2", 100, "EUR", "tok"),
			payment.Order{ID: "o2", Total: payment.Money{Amount: 100, Currency: "EUR"}, PaymentToken: "tok", Placed: true, StockReserved: true}},
		{"o2 reserved again", reserved("o2"),
			payment.Order{ID: "o2", Total: payment.Money{Amount: 100, Currency: "EUR"}, PaymentToken: "tok", Placed: true, StockReserved: true}},
		{"o3 reserved", reserved("o3"), payment.Order{ID: "o3", StockReserved: true, Cancelled: true}},
		{"o3 cancelled again", cancelled("o3"), payment.Order{ID: "o3", StockReserved: true, Cancelled: true}},
	}
	for _, st := range steps {
		got, stored := record(t, db, s, st.record)
		if got.order != st.want || got.payment != nil {
			t.Errorf("%s: returned %+v, %+v; want %+v without payment", st.name, got.order, got.payment, st.want)
		}
		if stored.order != got.order || stored.payment != nil {
			t.Errorf("%s: stored %+v, %+v; returned %+v", st.name, stored.order, stored.payment, got.order)
		}
	}

	// With a payment: every Record method returns it, as stored.
	now := s.Now()
	p := payment.Payment{ID: "11111111-1111-1111-1111-111111111111", OrderID: "o2", Amount: payment.Money{Amount: 100, Currency: "EUR"},
		Status: payment.Captured, ProviderReference: "cap_1", Version: 1, CreatedAt: now, CapturedAt: &now}
	inTx(t, db, func(tx *sqlx.Tx) error { return s.AddPayment(ctx, tx, p) })
	for name, f := range map[string]func(tx *sqlx.Tx) (payment.Order, *payment.Payment, error){
		"placed": placedO("o2", 100, "EUR", "tok"), "reserved": reserved("o2"), "cancelled": cancelled("o2"),
	} {
		got, stored := record(t, db, s, f)
		if !samePayment(got.payment, &p) || !samePayment(stored.payment, &p) {
			t.Errorf("%s: payment %+v, stored %+v; want %+v", name, got.payment, stored.payment, p)
		}
	}
	refunded := p
	refunded.Status, refunded.RefundReference, refunded.RefundedAt, refunded.Version = payment.Refunded, "ref_1", &now, 2
	inTx(t, db, func(tx *sqlx.Tx) error { return s.SaveRefund(ctx, tx, refunded) })
	if got, _ := record(t, db, s, cancelled("o2")); !samePayment(got.payment, &refunded) {
		t.Errorf("after the refund: payment %+v, want %+v", got.payment, refunded)
	}
}

// A handler that waits for the lock of an order another handler holds sees, once it gets it, what
// that handler committed (its payment), although its own transaction began and wrote before:
// the order and its payment are read without a locking read, after the lock was granted.
func TestRecordSeesWhatTheLockHolderCommitted(t *testing.T) {
	s, db := newTestStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inTx(t, db, func(tx *sqlx.Tx) error {
		_, _, err := s.RecordOrderPlaced(ctx, tx, payment.Order{ID: "o1", Total: payment.Money{Amount: 100, Currency: "EUR"}, PaymentToken: "tok"})
		return err
	})

	holder, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback() }()
	o, existing, err := s.RecordStockReserved(ctx, holder, "o1")
	if err != nil || existing != nil || !payment.ChargeDue(o, existing) {
		t.Fatalf("stock reserved: %+v, %+v, %v", o, existing, err)
	}

	type result struct {
		order   payment.Order
		payment *payment.Payment
		err     error
	}
	done := make(chan result, 1)
	waiter, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = waiter.Rollback() }()
	// Like HandleTx: the inbox row first.
	if _, err := waiter.ExecContext(ctx, `INSERT INTO eventbus_inbox (uuid, type, handled_at) VALUES ('u1', 't', NOW())`); err != nil {
		t.Fatal(err)
	}
	go func() {
		var r result
		r.order, r.payment, r.err = s.RecordStockReserved(ctx, waiter, "o1") // a republished stock_reserved
		done <- r
	}()
	testinfra.AwaitLockWait(t, db, "", done)

	now := s.Now()
	p := payment.Payment{ID: "11111111-1111-1111-1111-111111111111", OrderID: "o1", Amount: o.Total, Status: payment.Captured,
		ProviderReference: "cap_1", Version: 1, CreatedAt: now, CapturedAt: &now}
	if err := s.AddPayment(ctx, holder, p); err != nil {
		t.Fatal(err)
	}
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !samePayment(r.payment, &p) || payment.ChargeDue(r.order, r.payment) {
		t.Fatalf("after the holder committed: %+v with payment %+v, want %+v", r.order, r.payment, p)
	}
	if err := waiter.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestMethodsAndTheCustomersOfOrders: payment methods are stored and read
// back per customer; payments are listed per customer through the orders'
// customers (order_placed), and CustomerOf names an order's customer.
func TestMethodsAndTheCustomersOfOrders(t *testing.T) {
	s, db := newTestStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, m := range []payment.Method{
		{ID: "m1", CustomerID: "c1", Token: "tok_visa", CreatedAt: now},
		{ID: "m2", CustomerID: "c2", Token: "tok_other", CreatedAt: now.Add(time.Millisecond)},
	} {
		if err := s.AddMethod(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := s.Method(ctx, "m1"); err != nil || m.Token != "tok_visa" || m.CustomerID != "c1" || !m.CreatedAt.Equal(now) {
		t.Fatalf("method m1: %+v %v", m, err)
	}
	if _, err := s.Method(ctx, "m9"); err != payment.ErrNotFound {
		t.Fatalf("missing method: %v", err)
	}
	c2 := "c2"
	if ms, total, err := s.Methods(ctx, &c2, 10, 0); err != nil || total != 1 || len(ms) != 1 || ms[0].ID != "m2" {
		t.Fatalf("c2's methods: %+v %d %v", ms, total, err)
	}
	if _, total, err := s.Methods(ctx, nil, 10, 0); err != nil || total != 2 {
		t.Fatalf("all methods: %d %v", total, err)
	}
	inTx(t, db, func(tx *sqlx.Tx) error {
		if m, err := s.MethodTx(ctx, tx, "m2"); err != nil || m == nil || m.Token != "tok_other" {
			t.Fatalf("MethodTx: %+v %v", m, err)
		}
		if m, err := s.MethodTx(ctx, tx, "m9"); err != nil || m != nil {
			t.Fatalf("MethodTx of a missing method: %+v %v", m, err)
		}
		for _, o := range []payment.Order{{ID: "o1", CustomerID: "c1"}, {ID: "o2", CustomerID: "c2"}} {
			o.Total, o.PaymentToken = payment.Money{Amount: 100, Currency: "EUR"}, "tok_visa"
			if _, _, err := s.RecordOrderPlaced(ctx, tx, o); err != nil {
				return err
			}
			p := payment.Payment{ID: "pay-" + o.ID, OrderID: o.ID, Amount: o.Total, Status: payment.Captured, Version: 1, CreatedAt: now, CapturedAt: &now}
			if err := s.AddPayment(ctx, tx, p); err != nil {
				return err
			}
		}
		return nil
	})
	if id, err := s.CustomerOf(ctx, "o2"); err != nil || id != "c2" {
		t.Fatalf("CustomerOf o2: %q %v", id, err)
	}
	if id, err := s.CustomerOf(ctx, "o9"); err != nil || id != "" {
		t.Fatalf("CustomerOf an unknown order: %q %v", id, err)
	}
	ps, total, err := s.Payments(ctx, payment.Filter{Customer: &c2}, 10, 0)
	if err != nil || total != 1 || len(ps) != 1 || ps[0].OrderID != "o2" {
		t.Fatalf("c2's payments: %+v %d %v", ps, total, err)
	}
	none := "\x00"
	if _, total, err := s.Payments(ctx, payment.Filter{Customer: &none}, 10, 0); err != nil || total != 0 {
		t.Fatalf("no customer's payments: %d %v", total, err)
	}
}
