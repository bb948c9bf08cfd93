package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/services/journeys/journeyevents"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

// settled are the states of a journey that did all it could: nothing it
// waits for is late, nothing is open.
var settled = []string{"completed", "awaiting_dispatch", "awaiting_delivery"}

// testJourneys checks, through the gateway, after the saga paths ran, that
// ops.journeys saw every order's journey to its end: each order has its
// placement journey, every journey of every order is settled, none is stuck,
// and a journey's timeline starts with the order's placement and links the
// order.
func testJourneys(t *testing.T, c *Cluster) {
	var orders []orderevents.Order
	next := c.Gateway + "/orders/v1/orders?size=100"
	for next != "" {
		var page hal.Collection[orderevents.Order]
		get(t, next, &page)
		orders = append(orders, page.Embedded["orders"]...)
		next = page.Links.Href("next")
	}
	if len(orders) < 5 {
		t.Fatalf("only %d orders: the saga tests should have placed more", len(orders))
	}
	states := map[string]int{}
	for _, o := range orders {
		var js []journeyevents.Journey
		eventually(t, sagaTimeout, "the journeys of order "+o.ID+" settled", func() (bool, string) {
			var page hal.Collection[journeyevents.Journey]
			get(t, c.Gateway+"/journeys/v1/journeys?size=100&order_id="+o.ID, &page)
			js = page.Embedded["journeys"]
			var got []string
			ok, placement := len(js) > 0, false
			for _, j := range js {
				got = append(got, j.Kind+":"+j.State+fmt.Sprint(j.WaitingFor))
				ok = ok && slices.Contains(settled, j.State)
				placement = placement || j.Kind == "order_placement"
			}
			return ok && placement, fmt.Sprintf("order %s: %v", o.Status, got)
		})
		for _, j := range js {
			states[j.Kind+" "+j.State]++
		}
	}
	t.Logf("journeys of %d orders: %v", len(orders), states)

	var stuck hal.Collection[journeyevents.Journey]
	get(t, c.Gateway+"/journeys/v1/journeys?state=stuck", &stuck)
	if stuck.Total != 0 {
		t.Errorf("%d stuck journeys: %+v", stuck.Total, stuck.Embedded["journeys"])
	}
	for _, bad := range []string{"state=lost", "order_id=not-a-uuid"} {
		if r := call(t, "GET", c.Gateway+"/journeys/v1/journeys?"+bad, nil, nil); r.Status != http.StatusBadRequest {
			t.Errorf("?%s: %d %s", bad, r.Status, r.Body)
		}
	}

	// One placement journey in full: its timeline, in order, and its links.
	o := orders[0]
	var page hal.Collection[journeyevents.Journey]
	get(t, c.Gateway+"/journeys/v1/journeys?order_id="+o.ID, &page)
	for _, j := range page.Embedded["journeys"] {
		if j.Kind != "order_placement" {
			continue
		}
		var full journeyevents.Journey
		get(t, j.Links.Href("self"), &full)
		if full.Embedded == nil || len(full.Embedded.Events) != full.EventCount || full.Embedded.Events[0].Type != orderevents.OrderPlaced.Type() {
			t.Fatalf("journey %s: %+v", j.ID, full)
		}
		for i, e := range full.Embedded.Events {
			if i > 0 && e.FiredAt.Before(full.Embedded.Events[i-1].FiredAt) {
				t.Errorf("timeline out of order at %d: %+v", i, full.Embedded.Events)
			}
			if e.Publisher == "" || !strings.HasPrefix(e.Type, e.Publisher+".") || (i > 0 && e.CausationID == "") || e.TraceID != full.TraceID {
				t.Errorf("event %d of journey %s: %+v", i, j.ID, e)
			}
		}
		if got := full.Links.Href("order"); got != o.Links.Href("self") {
			t.Errorf("journey %s links order %q, want %q", j.ID, got, o.Links.Href("self"))
		}
		return
	}
	t.Errorf("order %s has no placement journey", o.ID)
}
