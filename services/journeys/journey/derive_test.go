package journey_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/services/journeys/journey"
)

var t0 = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)

const (
	placed    = "sales.orders.order_placed"
	reserved  = "logistics.inventory.stock_reserved"
	rejected  = "logistics.inventory.stock_reservation_rejected"
	captured  = "finance.payments.payment_captured"
	declined  = "finance.payments.payment_declined"
	confirmed = "sales.orders.order_confirmed"
	cancelled = "sales.orders.order_cancelled"
	scheduled = "logistics.shipments.shipment_scheduled"
	released  = "logistics.inventory.stock_released"
	refunded  = "finance.payments.payment_refunded"
	shipCanc  = "logistics.shipments.shipment_cancelled"
)

func catalog(t *testing.T) *journey.Catalog {
	t.Helper()
	c, err := journey.Default()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// chain builds events of the given types, each caused by the previous one,
// fired ms milliseconds apart (0: all in the same millisecond).
func chain(ms int, types ...string) []journey.Event {
	var out []journey.Event
	for i, typ := range types {
		e := journey.Event{UUID: fmt.Sprintf("e%02d", i), Type: typ, FiredAt: t0.Add(time.Duration(i*ms) * time.Millisecond)}
		if i > 0 {
			e.CausationID = out[i-1].UUID
		}
		out = append(out, e)
	}
	return out
}

func TestDerive(t *testing.T) {
	c := catalog(t)
	now := t0.Add(time.Second)
	tests := []struct {
		name    string
		own     []journey.Event
		history []journey.Event
		now     time.Time
		state   string
		waiting []string
		stuck   string
	}{
		{"placed", chain(5, placed), nil, now, journey.StateInProgress, []string{reserved, rejected}, ""},
		{"reserved", chain(5, placed, reserved), nil, now, journey.StateInProgress, []string{captured, declined}, ""},
		{"payment overran", chain(5, placed, reserved), nil, t0.Add(31 * time.Second), journey.StateStuck, []string{captured, declined}, "payment"},
		{"scheduled", chain(5, placed, reserved, captured, confirmed, scheduled), nil, now, "awaiting_dispatch", nil, ""},
		{"delivered elsewhere", chain(5, placed, reserved, captured, confirmed, scheduled),
			chain(5, "logistics.shipments.shipment_dispatched", "logistics.shipments.shipment_delivered"), now, journey.StateCompleted, nil, ""},
		{"rejected", chain(5, placed, rejected, cancelled), nil, now, journey.StateCompleted, nil, ""},
		{"declined, stock not yet released", chain(5, placed, reserved, declined, cancelled), nil, now, journey.StateInProgress, []string{released, "logistics.inventory.stock_shipped"}, ""},
		{"declined and released", chain(5, placed, reserved, declined, cancelled, released), nil, now, journey.StateCompleted, nil, ""},
		{"customer cancelled before payment", chain(5, placed, reserved), chain(5, cancelled, released), t0.Add(time.Hour), journey.StateCompleted, nil, ""},
		{"cancellation compensates what happened", chain(5, cancelled), chain(5, placed, reserved, captured, confirmed, scheduled), now,
			journey.StateInProgress, []string{released, "logistics.inventory.stock_shipped", refunded, shipCanc}, ""},
		{"cancellation done", chain(5, cancelled, released, refunded, shipCanc), chain(5, placed, reserved, captured, confirmed, scheduled), now, journey.StateCompleted, nil, ""},
		{"no start", chain(5, reserved, captured), nil, now, journey.StateUntracked, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := c.Derive(tt.own, tt.history, tt.now)
			if st.State != tt.state || st.StuckStep != tt.stuck || !reflect.DeepEqual(st.WaitingFor(), tt.waiting) {
				t.Errorf("state %s stuck %q waiting %v, want %s %q %v", st.State, st.StuckStep, st.WaitingFor(), tt.state, tt.stuck, tt.waiting)
			}
		})
	}
}

// The same events in any arrival order, all in the same millisecond or not,
// give the same timeline and status.
func TestDeriveIgnoresArrivalOrder(t *testing.T) {
	c := catalog(t)
	for _, ms := range []int{0, 3} {
		events := chain(ms, placed, reserved, captured, confirmed, scheduled)
		want := c.Derive(events, nil, t0.Add(time.Second))
		r := rand.New(rand.NewPCG(1, uint64(ms)))
		for range 20 {
			shuffled := append([]journey.Event(nil), events...)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if got := c.Derive(shuffled, nil, t0.Add(time.Second)); !reflect.DeepEqual(got, want) {
				t.Fatalf("ms=%d: %+v, want %+v", ms, got, want)
			}
			journey.Sort(shuffled)
			if !reflect.DeepEqual(shuffled, events) {
				t.Fatalf("ms=%d: sorted %v, want %v", ms, shuffled, events)
			}
		}
	}
}

func TestStuckAndDeadline(t *testing.T) {
	c, err := catalog(t).WithLimits("payment=2s,*=10s")
	if err != nil {
		t.Fatal(err)
	}
	own := chain(0, placed, reserved)
	st := c.Derive(own, nil, t0.Add(time.Second))
	if st.State != journey.StateInProgress || !st.Deadline.Equal(t0.Add(2*time.Second)) || !st.Since.Equal(t0) {
		t.Fatalf("%+v", st)
	}
	st = c.Derive(own, nil, t0.Add(2*time.Second))
	if st.State != journey.StateStuck || st.StuckStep != "payment" || !st.Deadline.IsZero() {
		t.Fatalf("%+v", st)
	}
	// The payment arrives late: the journey moves on.
	own = append(own, journey.Event{UUID: "late", Type: captured, FiredAt: t0.Add(3 * time.Second)})
	st = c.Derive(own, nil, t0.Add(4*time.Second))
	if st.State != journey.StateInProgress || st.WaitingFor()[0] != confirmed {
		t.Fatalf("%+v", st)
	}
	for _, bad := range []string{"payment", "nosuch=1s", "payment=-1s", "payment=soon"} {
		if _, err := c.WithLimits(bad); err == nil {
			t.Errorf("WithLimits(%q) accepted", bad)
		}
	}
}

func TestIDsAndLinks(t *testing.T) {
	c := catalog(t)
	order := []byte(`{"id":"o1","customer_id":"c1","payment_id":"","status":"pending","lines":[]}`)
	if got := c.IDs("order", order); !reflect.DeepEqual(got, map[string]string{"order_id": "o1", "customer_id": "c1"}) {
		t.Errorf("ids %v", got)
	}
	if got := c.Links("payment", []byte(`{"id":"p1","order_id":"o1"}`)); !reflect.DeepEqual(got, map[string]string{
		"order": "orders/v1/orders/o1", "payment": "payments/v1/payments/p1"}) {
		t.Errorf("links %v", got)
	}
	if got := c.Links("payment", []byte(`{"id":"../x","order_id":"o1"}`)); got["payment"] != "" {
		t.Errorf("a link from an id that is not a path segment: %v", got)
	}
	if got := c.IDs("widget", []byte(`{"id":"w"}`)); len(got) != 0 {
		t.Errorf("ids of an undeclared entity: %v", got)
	}
}

func TestLoadRefusesBadDefinitions(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown key":  "stepz: {}",
		"no within":    "steps: {a: {after: [x.y.a], expect: [x.y.b]}}",
		"unknown step": "journeys: [{name: j, starts: x.y.a, steps: [nope]}]",
		"same start":   "journeys: [{name: j, starts: x.y.a}, {name: k, starts: x.y.a}]",
		"bad settled":  "journeys: [{name: j, starts: x.y.a, settled: [{state: stuck}]}]",
	} {
		if _, err := journey.Load([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestTraceID(t *testing.T) {
	if got := journey.TraceID("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("got %q", got)
	}
	for _, bad := range []string{"", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "garbage"} {
		if got := journey.TraceID(bad); got != "" {
			t.Errorf("TraceID(%q) = %q", bad, got)
		}
	}
}
