package conformance_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/internal/conformance"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

func dial(t *testing.T, u string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestWatchChecksLiveTraffic publishes good and bad messages to
// sagittarius-a in a fresh vhost and checks that the watch reports exactly
// the bad ones.
func TestWatchChecksLiveTraffic(t *testing.T) {
	amqpURL, _ := testinfra.NewVhost(t)
	vhost := amqpURL[strings.LastIndex(amqpURL, "/")+1:]
	vhost, _ = url.PathUnescape(vhost)
	testinfra.DeclareExchange(t, vhost)
	rules, _, err := conformance.FromManifests(manifests(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := conformance.Watch(ctx, conformance.WatchOptions{URL: amqpURL, Max: 3}, rules)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(w.Queue(), "audit.conformance-") {
		t.Errorf("queue %s", w.Queue())
	}
	ch := dial(t, amqpURL)
	pub := func(m conformance.Message) {
		t.Helper()
		err := ch.PublishWithContext(ctx, "sagittarius-a", "", false, false, amqp.Publishing{
			MessageId: m.MessageID, Type: m.Type, AppId: m.AppID, ContentType: m.ContentType,
			DeliveryMode: m.DeliveryMode, Headers: amqp.Table(m.Headers), Body: m.Body})
		if err != nil {
			t.Fatal(err)
		}
	}
	g := good(t)
	pub(g)
	transient := good(t)
	transient.DeliveryMode = amqp.Transient
	pub(transient)
	camel := good(t)
	camel.Type = "test.widgets.WidgetAdded"
	pub(camel)
	select {
	case <-w.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("saw %d of 3 messages", w.Seen())
	}
	r := w.Stop()
	if r.Messages != 3 || r.Types["test.widgets.widget_added"] != 2 {
		t.Errorf("report: %d messages, types %v", r.Messages, r.Types)
	}
	got := rulesOf(r.Violations)
	if !strings.Contains(got, "[delivery_mode]") || !strings.Contains(got, "[type]") {
		t.Errorf("violations:\n%s", got)
	}
	for _, v := range r.Violations {
		if strings.Contains(v.Subject, g.MessageID) {
			t.Errorf("a good message was reported: %v", v)
		}
	}
}

// TestTopology declares a conforming topology in a fresh vhost, then breaks
// it rule by rule.
func TestTopology(t *testing.T) {
	env := testinfra.RequireInfra(t)
	amqpURL, vhost := testinfra.NewVhost(t)
	testinfra.DeclareExchange(t, vhost)
	ch := dial(t, amqpURL)
	declare := func(name string, args amqp.Table) {
		t.Helper()
		if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
			t.Fatal(err)
		}
	}
	bind := func(q string) {
		t.Helper()
		if err := ch.QueueBind(q, "", "sagittarius-a", false, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"test.widgets", "test.gadgets"} {
		declare(s, nil)
		bind(s)
		declare(s+".retry.1000", amqp.Table{"x-dead-letter-exchange": s + ".retry"})
		declare(s+".dead-letter", nil)
	}
	declare("acme-analytics.order-stats", nil) // an external subscriber
	bind("acme-analytics.order-stats")
	opts := conformance.TopologyOptions{API: env.RabbitAPI, VHost: vhost, Services: []string{"test.widgets", "test.gadgets"}}
	vs, err := conformance.Topology(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) > 0 {
		t.Fatalf("a conforming topology: %v", vs)
	}

	declare("WidgetsQueue", nil)
	bind("test.widgets.retry.1000")
	declare("test.gizmos", amqp.Table{"x-dead-letter-exchange": "sagittarius-a"})
	opts.Services = append(opts.Services, "test.sprockets")
	vs, err = conformance.Topology(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	got := rulesOf(vs)
	for _, want := range []string{
		"[queue-name] queue WidgetsQueue",
		"[binding] binding sagittarius-a -> test.widgets.retry.1000",
		"[dead-letter] queue test.gizmos",
		"[service-queue] queue test.sprockets",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("violations:\n%s\nwant %q", got, want)
		}
	}

	// An exchange of the wrong type, in another vhost.
	_, other := testinfra.NewVhost(t)
	och := dial(t, strings.TrimSuffix(amqpURL, url.PathEscape(vhost))+url.PathEscape(other))
	if err := och.ExchangeDeclare("sagittarius-a", "topic", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	vs, err = conformance.Topology(context.Background(), conformance.TopologyOptions{API: env.RabbitAPI, VHost: other})
	if err != nil {
		t.Fatal(err)
	}
	if got := rulesOf(vs); !strings.Contains(got, "type topic, want fanout") || !strings.Contains(got, "not durable") {
		t.Errorf("violations:\n%s", got)
	}
}
