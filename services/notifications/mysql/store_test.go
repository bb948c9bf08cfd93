package mysql_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/notifications/httpapi"
	"github.com/sagittarius-a/sagittarius/services/notifications/mysql"
	"github.com/sagittarius-a/sagittarius/services/notifications/notification"
)

func newStore(t *testing.T) (*mysql.Store, *sqlx.DB) {
	t.Helper()
	db := servicetest.NewDatabase(t, 10, mysql.Migrations)
	s, err := mysql.NewStore(db, httpapi.NewRenderer(hal.MustBase("http://gw.test")).Notification, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func inTx(t *testing.T, db *sqlx.DB, fn func(tx *sqlx.Tx) error) {
	t.Helper()
	if err := mysqldb.InTx(context.Background(), db, fn); err != nil {
		t.Fatal(err)
	}
}

func record(t *testing.T, s *mysql.Store, db *sqlx.DB, kind notification.Kind, orderID, customerID string) bool {
	t.Helper()
	var stored bool
	inTx(t, db, func(tx *sqlx.Tx) error {
		var err error
		stored, err = s.Record(context.Background(), tx, notification.Notification{ID: uuid.NewString(), Kind: kind, OrderID: orderID,
			CustomerID: customerID, Subject: "s", Text: "t", EventID: uuid.NewString(), CreatedAt: time.Now()})
		return err
	})
	return stored
}

func customer(t *testing.T, s *mysql.Store, db *sqlx.DB, c notification.Customer) bool {
	t.Helper()
	var changed bool
	inTx(t, db, func(tx *sqlx.Tx) error {
		var err error
		changed, err = s.RecordCustomer(context.Background(), tx, c)
		return err
	})
	return changed
}

func list(t *testing.T, s *mysql.Store, f notification.Filter) []notification.Notification {
	t.Helper()
	f.Limit = 100
	ns, total, err := s.List(context.Background(), f)
	if err != nil || total != len(ns) {
		t.Fatalf("List: %d of %d, %v", len(ns), total, err)
	}
	return ns
}

// TestOnePerOrderAndKind: a second event of the same order and kind (a
// redelivery past the inbox, a republication with a new uuid) stores nothing.
func TestOnePerOrderAndKind(t *testing.T) {
	s, db := newStore(t)
	if !record(t, s, db, notification.OrderConfirmed, "o1", "c1") {
		t.Fatal("first not stored")
	}
	if record(t, s, db, notification.OrderConfirmed, "o1", "c1") {
		t.Fatal("second stored")
	}
	if !record(t, s, db, notification.OrderShipped, "o1", "c1") {
		t.Fatal("another kind not stored")
	}
	if ns := list(t, s, notification.Filter{CustomerID: "c1"}); len(ns) != 2 {
		t.Fatalf("%d notifications", len(ns))
	}
}

// TestLateCustomerAndOrder: a refund before any event of its order, and
// notifications before their customer, get customer and recipient when they
// arrive; older customer versions change nothing; a removed customer's
// waiting notifications become not_sent.
func TestLateCustomerAndOrder(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	record(t, s, db, notification.PaymentRefunded, "o1", "")
	n := list(t, s, notification.Filter{})[0]
	if n.CustomerID != "" || n.Recipient != "" || n.Status != notification.StatusPending || n.Reason != notification.ReasonNoRecipient {
		t.Fatalf("refund first: %+v", n)
	}
	inTx(t, db, func(tx *sqlx.Tx) error { return s.RecordOrder(ctx, tx, "o1", "c1") })
	if n := list(t, s, notification.Filter{})[0]; n.CustomerID != "c1" || n.Recipient != "" {
		t.Fatalf("after the order: %+v", n)
	}
	if !customer(t, s, db, notification.Customer{ID: "c1", Email: "v2@example.com", Version: 2}) {
		t.Fatal("customer v2 not recorded")
	}
	if customer(t, s, db, notification.Customer{ID: "c1", Email: "v1@example.com", Version: 1}) {
		t.Fatal("an older version changed the read model")
	}
	n = list(t, s, notification.Filter{CustomerID: "c1"})[0]
	if n.Recipient != "v2@example.com" || n.Reason != "" || n.Status != notification.StatusPending {
		t.Fatalf("after the customer: %+v", n)
	}
	record(t, s, db, notification.OrderCancelled, "o1", "c1")
	if n := list(t, s, notification.Filter{CustomerID: "c1"})[1]; n.Recipient != "v2@example.com" {
		t.Fatalf("recorded with a known customer: %+v", n)
	}
	customer(t, s, db, notification.Customer{ID: "c1", Email: "v2@example.com", Version: 3, Removed: true})
	for _, n := range list(t, s, notification.Filter{CustomerID: "c1"}) {
		if n.Status != notification.StatusNotSent || n.Reason != notification.ReasonCustomerRemoved {
			t.Fatalf("after removal: %+v", n)
		}
	}
	if record(t, s, db, notification.OrderShipped, "o1", "c1"); list(t, s, notification.Filter{Status: notification.StatusNotSent}) == nil {
		t.Fatal("no not_sent")
	}
}

// TestConcurrentRefundAndCancellation: whichever of the two transactions
// commits first, the refund ends with the order's customer.
func TestConcurrentRefundAndCancellation(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	customer(t, s, db, notification.Customer{ID: "c1", Email: "ann@example.com", Version: 1})
	for i := range 20 {
		order := uuid.NewString()
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := mysqldb.InTx(ctx, db, func(tx *sqlx.Tx) error {
				_, err := s.Record(ctx, tx, notification.Notification{ID: uuid.NewString(), Kind: notification.PaymentRefunded, OrderID: order,
					Subject: "s", Text: "t", EventID: uuid.NewString(), CreatedAt: time.Now()})
				return err
			}); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := mysqldb.InTx(ctx, db, func(tx *sqlx.Tx) error { return s.RecordOrder(ctx, tx, order, "c1") }); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		var got struct {
			CustomerID *string `db:"customer_id"`
			Recipient  *string `db:"recipient"`
		}
		if err := db.Get(&got, `SELECT customer_id, recipient FROM notifications WHERE order_id = ?`, order); err != nil {
			t.Fatal(err)
		}
		if got.CustomerID == nil || *got.CustomerID != "c1" || got.Recipient == nil || *got.Recipient != "ann@example.com" {
			t.Fatalf("round %d: refund without its customer: %v %v", i, got.CustomerID, got.Recipient)
		}
	}
}

// TestDelivery: a claim takes each notification once; sent, failed (due
// again at next, or never), not_sent for want of a server (claimed once a
// server is there), stale claims.
func TestDelivery(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	customer(t, s, db, notification.Customer{ID: "c1", Email: "ann@example.com", Version: 1})
	for _, o := range []string{"o1", "o2", "o3"} {
		record(t, s, db, notification.OrderConfirmed, o, "c1")
	}
	record(t, s, db, notification.OrderConfirmed, "o4", "c2") // no recipient: not claimed
	now := time.Now()
	got, err := s.Claim(ctx, now, 10)
	if err != nil || len(got) != 3 || got[0].Status != notification.StatusSending || got[0].Attempts != 1 {
		t.Fatalf("Claim: %+v %v", got, err)
	}
	if again, err := s.Claim(ctx, now, 10); err != nil || len(again) != 0 {
		t.Fatalf("a second claim took %d (%v)", len(again), err)
	}
	next := now.Add(time.Minute)
	if err := s.Sent(ctx, got[0].ID, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Failed(ctx, got[1].ID, "451 try again", &next); err != nil {
		t.Fatal(err)
	}
	if err := s.Failed(ctx, got[2].ID, "554 after data", nil); err != nil {
		t.Fatal(err)
	}
	var outbox int
	if err := db.Get(&outbox, `SELECT COUNT(*) FROM eventbus_outbox WHERE type = 'crm.notifications.notification_sent'`); err != nil || outbox != 1 {
		t.Fatalf("%d notification_sent in the outbox (%v)", outbox, err)
	}
	if due, _ := s.Claim(ctx, now, 10); len(due) != 0 {
		t.Fatalf("claimed %d before the next attempt", len(due))
	}
	due, err := s.Claim(ctx, next.Add(time.Second), 10)
	if err != nil || len(due) != 1 || due[0].ID != got[1].ID || due[0].Attempts != 2 {
		t.Fatalf("claim when due: %+v %v", due, err)
	}
	if n, err := s.ReleaseStale(ctx, next.Add(2*time.Second)); err != nil || n != 1 {
		t.Fatalf("ReleaseStale: %d %v", n, err)
	}
	if n, _ := s.Get(ctx, got[1].ID); n.Status != notification.StatusFailed || n.Reason != notification.ReasonInterrupted || n.NextAttemptAt != nil {
		t.Fatalf("stale: %+v", n)
	}

	record(t, s, db, notification.OrderShipped, "o1", "c1")
	if n, err := s.MarkNotSent(ctx, notification.ReasonNoServer); err != nil || n != 1 {
		t.Fatalf("MarkNotSent: %d %v", n, err)
	}
	if again, _ := s.Claim(ctx, now, 10); len(again) != 1 || again[0].Kind != notification.OrderShipped {
		t.Fatalf("not_sent for want of a server is claimed once there is one: %+v", again)
	}
}
