package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
	"github.com/sagittarius-a/sagittarius/services/journeys/journey"
	"github.com/sagittarius-a/sagittarius/services/journeys/journeyevents"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

// flow builds the events of one business transaction as their publishers
// would: one correlation id and trace, each event caused by the previous one.
type flow struct {
	t       *testing.T
	ctx     context.Context
	corr    string
	traceID string
	msgs    []eventbus.Message
}

func newFlow(t *testing.T) *flow {
	traceID := strings.ReplaceAll(uuid.NewString(), "-", "")
	corr := uuid.NewString()
	ctx := eventbus.WithCorrelationID(context.Background(), corr)
	ctx = eventbus.WithTraceparent(ctx, "00-"+traceID+"-00f067aa0ba902b7-01")
	return &flow{t: t, ctx: ctx, corr: corr, traceID: traceID}
}

// add appends the message of one event (et.New's results) caused by the
// previous one, 2 ms later, and returns it.
func (f *flow) add(m eventbus.Message, err error) eventbus.Message {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	if n := len(f.msgs); n > 0 {
		m.Headers[eventbus.HeaderCausationID] = f.msgs[n-1].ID
	}
	f.msgs = append(f.msgs, m)
	return m
}

type order struct{ id, customer, payment, shipment string }

func newOrder() order {
	return order{uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()}
}

func (o order) order(status string) orderevents.Order {
	return orderevents.Order{ID: o.id, CustomerID: o.customer, Status: status}
}

// placement returns the flow of an order placed, reserved, paid, confirmed
// and scheduled (the first n of those events; all when n is 0).
func placement(t *testing.T, o order, n int) *flow {
	f := newFlow(t)
	steps := []func(){
		func() { f.add(orderevents.OrderPlaced.New(f.ctx, o.order("pending"))) },
		func() {
			f.add(stockevents.StockReserved.New(f.ctx, stockevents.Reservation{OrderID: o.id, Status: "held"}))
		},
		func() {
			f.add(paymentevents.PaymentCaptured.New(f.ctx, paymentevents.Payment{ID: o.payment, OrderID: o.id, Status: "captured"}))
		},
		func() { f.add(orderevents.OrderConfirmed.New(f.ctx, o.order("confirmed"))) },
		func() {
			f.add(shipmentevents.ShipmentScheduled.New(f.ctx, shipmentevents.Shipment{ID: o.shipment, OrderID: o.id, Status: "scheduled"}))
		},
	}
	if n == 0 {
		n = len(steps)
	}
	for _, s := range steps[:n] {
		s()
	}
	return f
}

type journeyDoc struct {
	journeyevents.Journey
	Links    map[string]json.RawMessage `json:"_links"`
	Embedded struct {
		Events []journeyevents.Event `json:"events"`
	} `json:"_embedded"`
}

func getJourney(s *servicetest.Service, id string) journeyDoc {
	var j journeyDoc
	s.GetJSON("/v1/journeys/"+id, &j)
	return j
}

// waitState waits until journey id is in state and returns it.
func waitState(s *servicetest.Service, id, state string) journeyDoc {
	return waitJourney(s, id, state, func(j journeyDoc) bool { return j.State == state })
}

// waitJourney waits until journey id satisfies cond and returns it.
func waitJourney(s *servicetest.Service, id, what string, cond func(journeyDoc) bool) journeyDoc {
	var j journeyDoc
	s.Eventually("journey "+id+" "+what, func() bool {
		code, body := s.Do("GET", "/v1/journeys/"+id, "")
		j = journeyDoc{} // decode afresh: members a poll omits must not survive from the last
		return code == http.StatusOK && json.Unmarshal(body, &j) == nil && cond(j)
	})
	return j
}

func types(events []journeyevents.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

func href(t *testing.T, links map[string]json.RawMessage, rel string) string {
	t.Helper()
	var l struct {
		Href string `json:"href"`
	}
	if err := json.Unmarshal(links[rel], &l); err != nil {
		t.Fatalf("link %s: %s", rel, links[rel])
	}
	return l.Href
}

// TestJourneys runs the service against the real broker and database with
// a short limit on the payment step, and publishes events as the saga's
// services would.
func TestJourneys(t *testing.T) {
	s := servicetest.Start(t, run, journeyevents.Service,
		"JOURNEY_STEP_LIMITS=payment=1500ms", "JOURNEY_CHECK_INTERVAL=100ms",
		"TRACE_UI_URL=http://127.0.0.1:16686/trace/{trace_id}")
	placementTypes := []string{orderevents.OrderPlaced.Type(), stockevents.StockReserved.Type(), paymentevents.PaymentCaptured.Type(),
		orderevents.OrderConfirmed.Type(), shipmentevents.ShipmentScheduled.Type()}

	t.Run("a happy journey settles, then completes with its dispatch and delivery", func(t *testing.T) {
		o := newOrder()
		f := placement(t, o, 0)
		f.msgs[3].Headers["actor"] = "customer:" + o.customer
		for _, m := range f.msgs {
			s.Publish(m, nil)
		}
		j := waitState(s, f.corr, "awaiting_dispatch")
		if j.Kind != "order_placement" || j.EventCount != 5 || j.TraceID != f.traceID || len(j.WaitingFor) != 0 || j.Since != nil {
			t.Errorf("journey %+v", j.Journey)
		}
		if got := types(j.Embedded.Events); !reflect.DeepEqual(got, placementTypes) {
			t.Errorf("timeline %v", got)
		}
		for i, e := range j.Embedded.Events {
			m := f.msgs[i]
			cause := m.Headers[eventbus.HeaderCausationID]
			if e.UUID != m.ID || e.Publisher != m.AppID || !e.FiredAt.Equal(m.FiredAt) || e.CausationID != cause || e.TraceID != f.traceID {
				t.Errorf("event %d: %+v, message %+v", i, e, m)
			}
		}
		if a := j.Embedded.Events[3].Actor; a != "customer:"+o.customer {
			t.Errorf("actor %q", a)
		}
		want := map[string]string{
			"self":        "http://gw.test/journeys/v1/journeys/" + f.corr,
			"order":       "http://gw.test/orders/v1/orders/" + o.id,
			"customer":    "http://gw.test/customers/v1/customers/" + o.customer,
			"reservation": "http://gw.test/inventory/v1/reservations/" + o.id,
			"payment":     "http://gw.test/payments/v1/payments/" + o.payment,
			"shipment":    "http://gw.test/shipping/v1/shipments/" + o.shipment,
			"trace":       "http://127.0.0.1:16686/trace/" + f.traceID,
		}
		for rel, h := range want {
			if got := href(t, j.Links, rel); got != h {
				t.Errorf("link %s: %s, want %s", rel, got, h)
			}
		}
		var failed []struct {
			Href      string `json:"href"`
			Templated bool   `json:"templated"`
		}
		if err := json.Unmarshal(j.Links["failed-messages"], &failed); err != nil || len(failed) != 4 ||
			failed[0].Href != "http://gw.test/payments/v1/failed-messages{?type,group,status,from,to}" || !failed[0].Templated {
			t.Errorf("failed-messages links %s", j.Links["failed-messages"])
		}

		// Dispatch and delivery: other requests, other correlation ids.
		d := newFlow(t)
		d.add(shipmentevents.ShipmentDispatched.New(d.ctx, shipmentevents.Shipment{ID: o.shipment, OrderID: o.id, Status: "dispatched"}))
		d.add(stockevents.StockShipped.New(d.ctx, stockevents.Reservation{OrderID: o.id, Status: "shipped"}))
		d.add(orderevents.OrderShipped.New(d.ctx, o.order("shipped")))
		for _, m := range d.msgs {
			s.Publish(m, nil)
		}
		waitState(s, d.corr, "awaiting_delivery")
		waitState(s, f.corr, "awaiting_delivery")
		v := newFlow(t)
		v.add(shipmentevents.ShipmentDelivered.New(v.ctx, shipmentevents.Shipment{ID: o.shipment, OrderID: o.id, Status: "delivered"}))
		v.add(orderevents.OrderDelivered.New(v.ctx, o.order("delivered")))
		for _, m := range v.msgs {
			s.Publish(m, nil)
		}
		waitState(s, v.corr, journey.StateCompleted)
		waitState(s, d.corr, journey.StateCompleted)
		waitState(s, f.corr, journey.StateCompleted)

		// Findable by the order's id and its customer's.
		var list struct {
			Total    int `json:"total"`
			Embedded struct {
				Journeys []journeyevents.Journey `json:"journeys"`
			} `json:"_embedded"`
		}
		s.GetJSON("/v1/journeys?order_id="+o.id, &list)
		var ids []string
		for _, x := range list.Embedded.Journeys {
			ids = append(ids, x.ID)
		}
		slices.Sort(ids)
		wantIDs := []string{f.corr, d.corr, v.corr}
		slices.Sort(wantIDs)
		if list.Total != 3 || !reflect.DeepEqual(ids, wantIDs) {
			t.Errorf("journeys of the order: %d %v, want %v", list.Total, ids, wantIDs)
		}
		// The order's entity carries its customer: every journey of the
		// order is one of the customer's.
		list.Embedded.Journeys = nil
		s.GetJSON("/v1/journeys?customer_id="+o.customer+"&state=completed", &list)
		if list.Total != 3 {
			t.Errorf("journeys of the customer: %d, want 3", list.Total)
		}
		list.Embedded.Journeys = nil
		s.GetJSON("/v1/journeys?customer_id="+uuid.NewString(), &list)
		if list.Total != 0 || len(list.Embedded.Journeys) != 0 {
			t.Errorf("journeys of another customer: %+v", list)
		}
	})

	t.Run("late, repeated and out-of-order events give the same journey", func(t *testing.T) {
		o := newOrder()
		f := placement(t, o, 0)
		for i := len(f.msgs) - 1; i >= 0; i-- { // last first, each twice
			s.Publish(f.msgs[i], nil)
			s.Publish(f.msgs[i], nil)
		}
		j := waitState(s, f.corr, "awaiting_dispatch")
		if got := types(j.Embedded.Events); !reflect.DeepEqual(got, placementTypes) || j.EventCount != 5 || j.Kind != "order_placement" {
			t.Errorf("timeline %v, %d events, kind %s", got, j.EventCount, j.Kind)
		}
	})

	t.Run("a journey whose payment does not come is stuck, and recovers when it comes", func(t *testing.T) {
		o := newOrder()
		f := placement(t, o, 3) // placed, reserved, captured: the capture is held back
		s.Publish(f.msgs[0], nil)
		s.Publish(f.msgs[1], nil)
		j := waitJourney(s, f.corr, "with 2 events", func(j journeyDoc) bool { return j.EventCount == 2 })
		if j.State != journey.StateInProgress || !reflect.DeepEqual(j.WaitingFor, []string{paymentevents.PaymentCaptured.Type(), paymentevents.PaymentDeclined.Type()}) ||
			j.Since == nil || !j.Since.Equal(f.msgs[1].FiredAt) {
			t.Errorf("waiting for %v since %v", j.WaitingFor, j.Since)
		}
		j = waitState(s, f.corr, journey.StateStuck)
		if j.StuckStep != "payment" || len(j.Waiting) != 1 || !j.Waiting[0].Overdue ||
			!j.Waiting[0].Deadline.Equal(f.msgs[1].FiredAt.Add(1500*time.Millisecond)) {
			t.Errorf("stuck journey %+v", j.Journey)
		}
		if stuck := s.WaitEvent(journeyevents.JourneyStuck.Type(), "journey", nil); !strings.Contains(string(stuck), f.corr) {
			t.Errorf("journey_stuck %s", stuck)
		}
		s.Eventually("the stuck gauge at 1", func() bool { return stuckGauge(s, "payment") == "1" })
		var list struct {
			Total int `json:"total"`
		}
		s.GetJSON("/v1/journeys?state=stuck", &list)
		if list.Total != 1 {
			t.Errorf("%d stuck journeys, want 1", list.Total)
		}

		s.Publish(f.msgs[2], nil) // the capture, late
		j = waitState(s, f.corr, journey.StateInProgress)
		if !reflect.DeepEqual(j.WaitingFor, []string{orderevents.OrderConfirmed.Type(), orderevents.OrderCancelled.Type()}) || j.StuckStep != "" {
			t.Errorf("recovered journey %+v", j.Journey)
		}
		s.WaitEvent(journeyevents.JourneyResumed.Type(), "journey", nil)
		s.Eventually("the stuck gauge at 0", func() bool { return stuckGauge(s, "payment") == "0" })
		// Its own events joined its timeline, at their place.
		j = getJourney(s, f.corr)
		got := types(j.Embedded.Events)
		if !slices.Contains(got, journeyevents.JourneyStuck.Type()) || !slices.Contains(got, journeyevents.JourneyResumed.Type()) {
			t.Errorf("timeline %v", got)
		}
	})

	t.Run("bad filters are 400, an unknown journey 404, as problem+json", func(t *testing.T) {
		for _, q := range []string{"state=nope", "state=stuck&state=completed", "order_id=42", "customer_id=", "page=0", "size=1000"} {
			code, body := s.Do("GET", "/v1/journeys?"+q, "")
			if code != http.StatusBadRequest || !strings.Contains(string(body), `"status":400`) {
				t.Errorf("?%s: %d %s", q, code, body)
			}
		}
		req, _ := http.NewRequest("GET", s.URL+"/v1/journeys/"+uuid.NewString(), nil)
		req.Header.Set("Authorization", "Bearer "+s.Issuer.Staff())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("unknown journey: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var root struct {
			Links map[string]json.RawMessage `json:"_links"`
		}
		s.GetJSON("/v1", &root)
		for _, rel := range []string{"self", "journeys", "find-journeys", "journey", "stuck-journeys", "contracts"} {
			if root.Links[rel] == nil {
				t.Errorf("root has no %s link", rel)
			}
		}
	})
}

var gaugeRE = regexp.MustCompile(`(?m)^sagittarius_journeys_stuck\{(?:service="[^"]*",)?step="([a-z_]+)"(?:,service="[^"]*")?\} (\S+)$`)

// stuckGauge returns the value of sagittarius_journeys_stuck{step} on
// GET /metrics, or "" when absent.
func stuckGauge(s *servicetest.Service, step string) string {
	code, body := s.Do("GET", "/metrics", "")
	if code != http.StatusOK {
		return fmt.Sprint("status ", code)
	}
	for _, m := range gaugeRE.FindAllStringSubmatch(string(body), -1) {
		if m[1] == step {
			return m[2]
		}
	}
	return ""
}
