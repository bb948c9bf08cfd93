package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// spy is a queue of its own bound to sagittarius-a that records every event
// published during the test.
type spy struct {
	mu   sync.Mutex
	msgs []amqp.Delivery
}

// startSpy declares an exclusive queue bound to sagittarius-a in the
// cluster's vhost and records every delivery until the test ends.
func startSpy(t *testing.T, c *Cluster) *spy {
	t.Helper()
	conn, err := amqp.Dial(c.AMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("e2e.spy", false, true, true, false, nil) // a valid queue name: the conformance audit checks them
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "", testinfra.Exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(q.Name, "e2e.spy", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &spy{}
	go func() {
		for d := range deliveries {
			s.mu.Lock()
			s.msgs = append(s.msgs, d)
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *spy) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

func (s *spy) snapshot() []amqp.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]amqp.Delivery(nil), s.msgs...)
}

// waitQuiet waits until no service queue holds a message and the spy has
// seen no new event for two seconds: the platform has finished reacting.
func waitQuiet(t *testing.T, c *Cluster, s *spy) {
	t.Helper()
	conn, err := amqp.Dial(c.AMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	last, since := s.count(), time.Now()
	eventually(t, 60*time.Second, "the platform to fall quiet", func() (bool, string) {
		if n := s.count(); n != last {
			last, since = n, time.Now()
			return false, fmt.Sprintf("%d events seen", n)
		}
		for _, name := range c.Queues {
			q := passiveQueue(t, conn, name)
			if q.Messages > 0 {
				since = time.Now()
				return false, fmt.Sprintf("%d messages ready in %s", q.Messages, name)
			}
		}
		return time.Since(since) > 2*time.Second, "waiting for two quiet seconds"
	})
}

// passiveQueue returns the exact count of ready messages in a queue.
func passiveQueue(t *testing.T, conn *amqp.Connection, name string) amqp.Queue {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("queue %s: %v", name, err)
	}
	return q
}

// collections are every collection of the platform, by gateway path.
var collections = []string{
	"/customers/v1/customers", "/catalog/v1/products", "/orders/v1/orders",
	"/inventory/v1/stock-items", "/inventory/v1/reservations", "/payments/v1/payments", "/shipping/v1/shipments",
	"/notifications/v1/notifications",
	"/journeys/v1/journeys",
}

// snapshotState reads every item of every collection through the gateway,
// page by page, keyed by its self link.
func snapshotState(t *testing.T, c *Cluster) map[string]string {
	t.Helper()
	state := map[string]string{}
	for _, path := range collections {
		next := c.Gateway + path + "?size=100"
		for next != "" {
			var page struct {
				Links    map[string]json.RawMessage              `json:"_links"`
				Embedded map[string][]map[string]json.RawMessage `json:"_embedded"`
			}
			get(t, next, &page)
			for _, items := range page.Embedded {
				for _, item := range items {
					var self struct {
						Self struct {
							Href string `json:"href"`
						} `json:"self"`
					}
					if err := json.Unmarshal(item["_links"], &self); err != nil || self.Self.Href == "" {
						t.Fatalf("item of %s without _links.self: %v", path, err)
					}
					b, _ := json.Marshal(item)
					state[self.Self.Href] = string(b)
				}
			}
			next = ""
			var link struct {
				Href string `json:"href"`
			}
			if raw, ok := page.Links["next"]; ok && json.Unmarshal(raw, &link) == nil {
				next = link.Href
			}
		}
	}
	return state
}

// testRedelivery publishes again every event the spy recorded, with the same
// message id, type, app id, headers and body, as a broker redelivery or a
// publisher retry would, then checks that the state of every service is
// unchanged and that no service published anything in reaction.
func testRedelivery(t *testing.T, c *Cluster, s *spy) {
	waitQuiet(t, c, s)
	before := snapshotState(t, c)
	captured := s.snapshot()
	if len(captured) < 20 {
		t.Fatalf("only %d events recorded; the saga tests should have produced many", len(captured))
	}
	types := map[string]int{}
	for _, d := range captured {
		types[d.Type]++
	}

	conn, err := amqp.Dial(c.AMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var confirms []*amqp.DeferredConfirmation
	for _, d := range captured {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, testinfra.Exchange, d.RoutingKey, true, false, amqp.Publishing{
			Headers: d.Headers, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
			DeliveryMode: amqp.Persistent, CorrelationId: d.CorrelationId, MessageId: d.MessageId,
			Timestamp: d.Timestamp, Type: d.Type, AppId: d.AppId, Body: d.Body,
		})
		if err != nil {
			t.Fatalf("republish %s %s: %v", d.Type, d.MessageId, err)
		}
		confirms = append(confirms, dc)
	}
	for _, dc := range confirms {
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("republish not confirmed: %v", err)
		}
	}
	want := len(captured) * 2
	eventually(t, 30*time.Second, "the spy to see the republished events", func() (bool, string) {
		return s.count() >= want, fmt.Sprint(s.count())
	})
	waitQuiet(t, c, s)

	if n := s.count(); n != want {
		var extra []string
		for _, d := range s.snapshot()[want:] {
			extra = append(extra, d.Type)
		}
		t.Errorf("services published %d new events in reaction to duplicates: %v", n-want, extra)
	}
	after := snapshotState(t, c)
	var diffs []string
	for k, v := range before {
		if after[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s\n  before: %s\n  after:  %s", k, v, after[k]))
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diffs = append(diffs, "new resource "+k)
		}
	}
	sort.Strings(diffs)
	for _, d := range diffs {
		t.Error(d)
	}
	for _, name := range c.Queues {
		var q testinfra.QueueInfo
		testinfra.ManagementGet(t, "/api/queues/"+url.PathEscape(c.Vhost)+"/"+url.PathEscape(name+".dead-letter"), &q)
		if q.Messages > 0 {
			t.Errorf("%d messages dead-lettered by %s", q.Messages, name)
		}
	}
	var summary bytes.Buffer
	keys := make([]string, 0, len(types))
	for k := range types {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&summary, "\n  %3d %s", types[k], k)
	}
	t.Logf("%d events redelivered, %d resources unchanged:%s", len(captured), len(before), summary.String())
}
