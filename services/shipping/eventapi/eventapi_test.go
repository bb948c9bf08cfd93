package eventapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/httpapi"
	shipmysql "github.com/sagittarius-a/sagittarius/services/shipping/mysql"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipment"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

type fixture struct {
	t     *testing.T
	db    *sqlx.DB
	store *shipmysql.Store
	h     *Handlers
	api   http.Handler
}

func newFixture(t *testing.T) *fixture {
	db := newTestDB(t)
	rs := httpapi.NewRenderer(hal.MustBase("http://gw.test"))
	store, err := shipmysql.NewStore(db, rs, nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	return &fixture{t: t, db: db, store: store, h: New(store, logger),
		api: httpkit.Stack(httpapi.New(store, rs, logger).Routes(), httpkit.Options{Logger: logger})}
}

// deliver runs handler on ev in a transaction, as eventbus.HandleTx does (minus the inbox, so that a
// second delivery reaches the handler: the handler itself must be idempotent).
func deliver[T any](f *fixture, handler func(context.Context, *sqlx.Tx, eventbus.Event[T]) error, ev eventbus.Event[T]) error {
	f.t.Helper()
	tx, err := f.db.Beginx()
	if err != nil {
		f.t.Fatal(err)
	}
	defer tx.Rollback()
	if err := handler(context.Background(), tx, ev); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		f.t.Fatal(err)
	}
	return nil
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

var home = orderevents.Address{Name: "Ada Lovelace", Line1: "12 St James's Square", PostalCode: "SW1Y 4JH", City: "London", Country: "GB"}

func orderEvent(id, status string, a orderevents.Address) eventbus.Event[orderevents.Order] {
	return eventbus.Event[orderevents.Order]{UUID: uuid.NewString(), FiredAt: time.Now().UTC(), Attempt: 1,
		Entity: orderevents.Order{ID: id, Status: status, ShippingAddress: a}}
}

func (f *fixture) shipmentOf(orderID string) *shipment.Shipment {
	f.t.Helper()
	ss, _, err := f.store.Shipments(context.Background(), shipment.Filter{OrderID: orderID}, 10, 0)
	f.must(err)
	if len(ss) > 1 {
		f.t.Fatalf("%d shipments for %s", len(ss), orderID)
	}
	if len(ss) == 0 {
		return nil
	}
	return &ss[0]
}

func (f *fixture) events(typ string) []shipmentevents.Shipment {
	f.t.Helper()
	var bodies [][]byte
	f.must(f.db.Select(&bodies, `SELECT body FROM eventbus_outbox WHERE type = ? ORDER BY created_at`, typ))
	var out []shipmentevents.Shipment
	for _, b := range bodies {
		var env struct {
			Shipment shipmentevents.Shipment `json:"shipment"`
		}
		f.must(json.Unmarshal(b, &env))
		out = append(out, env.Shipment)
	}
	return out
}

func TestScheduleEachEventTwice(t *testing.T) {
	f := newFixture(t)
	placed := orderEvent("o1", orderevents.StatusPending, home)
	confirmed := orderEvent("o1", orderevents.StatusConfirmed, home)
	f.must(deliver(f, f.h.OrderPlaced, placed))
	f.must(deliver(f, f.h.OrderPlaced, placed))
	if f.shipmentOf("o1") != nil {
		t.Fatal("scheduled before confirmation")
	}
	f.must(deliver(f, f.h.OrderConfirmed, confirmed))
	f.must(deliver(f, f.h.OrderConfirmed, confirmed))
	f.must(deliver(f, f.h.OrderConfirmed, orderEvent("o1", orderevents.StatusConfirmed, home)))
	sh := f.shipmentOf("o1")
	if sh == nil || sh.Status != shipment.Scheduled || sh.Address.City != "London" || sh.Address.Name != "Ada Lovelace" {
		t.Fatalf("shipment %+v", sh)
	}
	evs := f.events(shipmentevents.ShipmentScheduled.Type())
	if len(evs) != 1 || evs[0].Address.PostalCode != "SW1Y 4JH" || evs[0].Links.Href("order") != "http://gw.test/orders/v1/orders/o1" ||
		evs[0].Links.Href("self") != "http://gw.test/shipping/v1/shipments/"+sh.ID {
		t.Fatalf("shipment_scheduled events %+v", evs)
	}

	cancelled := orderEvent("o1", orderevents.StatusCancelled, home)
	f.must(deliver(f, f.h.OrderCancelled, cancelled))
	f.must(deliver(f, f.h.OrderCancelled, cancelled))
	if sh := f.shipmentOf("o1"); sh.Status != shipment.Cancelled || sh.CancelledAt == nil {
		t.Fatalf("shipment %+v", sh)
	}
	if n := len(f.events(shipmentevents.ShipmentCancelled.Type())); n != 1 {
		t.Fatalf("%d shipment_cancelled", n)
	}
}

func TestAddressFromConfirmationAlone(t *testing.T) {
	f := newFixture(t)
	f.must(deliver(f, f.h.OrderConfirmed, orderEvent("o1", orderevents.StatusConfirmed, home)))
	if sh := f.shipmentOf("o1"); sh == nil || sh.Address.Line1 != home.Line1 {
		t.Fatalf("shipment %+v", sh)
	}
	// No address anywhere: the event fails (retried by the bus), nothing is scheduled.
	err := deliver(f, f.h.OrderConfirmed, orderEvent("o2", orderevents.StatusConfirmed, orderevents.Address{}))
	if err == nil || f.shipmentOf("o2") != nil {
		t.Fatalf("err %v", err)
	}
	var perm *eventbus.PermanentError
	if errors.As(err, &perm) {
		t.Fatal("a missing address is retryable, not permanent")
	}
}

func TestCancelledBeforeConfirmed(t *testing.T) {
	f := newFixture(t)
	f.must(deliver(f, f.h.OrderPlaced, orderEvent("o1", orderevents.StatusPending, home)))
	f.must(deliver(f, f.h.OrderCancelled, orderEvent("o1", orderevents.StatusCancelled, home)))
	f.must(deliver(f, f.h.OrderConfirmed, orderEvent("o1", orderevents.StatusConfirmed, home)))
	if sh := f.shipmentOf("o1"); sh != nil {
		t.Fatalf("scheduled a cancelled order: %+v", sh)
	}
}

func (f *fixture) patch(id, body, ifMatch string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("PATCH", "/v1/shipments/"+id, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	rec := httptest.NewRecorder()
	f.api.ServeHTTP(rec, req)
	return rec
}

// TestDispatchDeliverThroughAPI drives a shipment through the real store with If-Match.
func TestDispatchDeliverThroughAPI(t *testing.T) {
	f := newFixture(t)
	f.must(deliver(f, f.h.OrderConfirmed, orderEvent("o1", orderevents.StatusConfirmed, home)))
	id := f.shipmentOf("o1").ID

	steps := []struct {
		body, ifMatch string
		status        int
		etag          string
	}{
		{`{"status":"delivered"}`, `"1"`, 409, ""},  // must dispatch first
		{`{"status":"dispatched"}`, `"7"`, 412, ""}, // stale
		{`{"status":"dispatched"}`, `"1"`, 200, `"2"`},
		{`{"status":"dispatched"}`, `"2"`, 200, `"2"`}, // already: no change
		{`{"status":"delivered"}`, `"1"`, 412, ""},     // stale again
		{`{"status":"delivered"}`, "", 200, `"3"`},     // If-Match is optional
		{`{"status":"dispatched"}`, "", 409, ""},
	}
	for i, st := range steps {
		rec := f.patch(id, st.body, st.ifMatch)
		if rec.Code != st.status {
			t.Fatalf("step %d: %d, want %d: %s", i, rec.Code, st.status, rec.Body)
		}
		if st.etag != "" && rec.Header().Get("ETag") != st.etag {
			t.Fatalf("step %d: ETag %q, want %s", i, rec.Header().Get("ETag"), st.etag)
		}
	}
	sh := f.shipmentOf("o1")
	if sh.Status != shipment.Delivered || sh.DispatchedAt == nil || sh.DeliveredAt == nil || sh.Version != 3 {
		t.Fatalf("shipment %+v", sh)
	}
	if n := len(f.events(shipmentevents.ShipmentDispatched.Type())); n != 1 {
		t.Fatalf("%d shipment_dispatched", n)
	}
	if n := len(f.events(shipmentevents.ShipmentDelivered.Type())); n != 1 {
		t.Fatalf("%d shipment_delivered", n)
	}
	// A dispatched shipment is not cancelled by a late cancellation.
	f.must(deliver(f, f.h.OrderCancelled, orderEvent("o1", orderevents.StatusCancelled, home)))
	if sh := f.shipmentOf("o1"); sh.Status != shipment.Delivered {
		t.Fatalf("delivered shipment cancelled: %+v", sh)
	}
	if rec := f.patch("00000000-0000-0000-0000-000000000000", `{"status":"dispatched"}`, ""); rec.Code != 404 {
		t.Fatalf("unknown shipment: %d", rec.Code)
	}
}
