package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

func publisherBus(t *testing.T, url string) *eventbus.Bus {
	return startBus(t, eventbus.Config{URL: url, Service: "test.widgets"}, func(b *eventbus.Bus) {
		if err := b.Publishes(widgetMade, widgetShipped); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPublishedMessagesFollowTheGuideline(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	tp := newTap(t, url, "test.external-observer")
	b := publisherBus(t, url)

	ctx := eventbus.WithCorrelationID(context.Background(), "req-123")
	ctx = eventbus.WithTraceparent(ctx, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	msg := mustMessage(t, ctx, widgetMade, newWidget(7))
	if err := b.Publish(ctx, msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	waitFor(t, 10*time.Second, "the tap to receive the event", func() bool { return tp.count() == 1 })
	d := tp.all()[0]

	if d.Exchange != "sagittarius-a" {
		t.Errorf("exchange = %q, want sagittarius-a", d.Exchange)
	}
	if d.Type != "test.widgets.widget_made" {
		t.Errorf("type = %q", d.Type)
	}
	if d.AppId != "test.widgets" {
		t.Errorf("app_id = %q", d.AppId)
	}
	if d.DeliveryMode != amqp.Persistent {
		t.Errorf("delivery_mode = %d, want 2", d.DeliveryMode)
	}
	if d.ContentType != "application/json" {
		t.Errorf("content_type = %q", d.ContentType)
	}
	if d.Timestamp.IsZero() || time.Since(d.Timestamp) > time.Minute {
		t.Errorf("timestamp = %v", d.Timestamp)
	}
	if d.Headers["correlation_id"] != "req-123" {
		t.Errorf("correlation_id header = %v", d.Headers["correlation_id"])
	}
	tpHeader, _ := d.Headers["traceparent"].(string)
	if !strings.HasPrefix(tpHeader, "00-0af7651916cd43dd8448eb211c80319c-") || tpHeader == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
		t.Errorf("traceparent = %q, want a child span of the incoming trace", tpHeader)
	}

	body := decodeBody(t, d.Body)
	var id, firedAt string
	if err := json.Unmarshal(body["uuid"], &id); err != nil {
		t.Fatalf("uuid: %v", err)
	}
	if _, err := uuid.Parse(id); err != nil {
		t.Errorf("uuid %q: %v", id, err)
	}
	if d.MessageId != id {
		t.Errorf("message_id %q != payload uuid %q", d.MessageId, id)
	}
	if err := json.Unmarshal(body["fired_at"], &firedAt); err != nil {
		t.Fatalf("fired_at: %v", err)
	}
	if !regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`).MatchString(firedAt) {
		t.Errorf("fired_at = %q, want YYYY-MM-DDTHH:mm:ss.sssZ", firedAt)
	}
	var w widget
	if err := json.Unmarshal(body["widget"], &w); err != nil || w != newWidget(7) {
		t.Errorf("widget = %+v, %v", w, err)
	}
	if len(body) != 3 {
		t.Errorf("payload has %d fields, want uuid, fired_at, widget: %s", len(body), d.Body)
	}
}

func TestPublishRefusesUndeclaredTypesAndForeignAppIDs(t *testing.T) {
	b, err := eventbus.New(eventbus.Config{URL: "amqp://localhost/", Service: "test.widgets", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publishes(widgetMade); err != nil {
		t.Fatal(err)
	}
	foreign := eventbus.MustEventType[widget]("test.gadgets", "gadget_made", "gadget")
	if err := b.Publishes(foreign); err == nil {
		t.Error("Publishes accepted another service's event type")
	}
	ctx := context.Background()
	if err := b.Publish(ctx, mustMessage(t, ctx, widgetShipped, newWidget(1))); err == nil || !strings.Contains(err.Error(), "not declared") {
		t.Errorf("Publish of an undeclared type = %v", err)
	}
}

func TestPublishWaitsForConnectionUntilContextEnds(t *testing.T) {
	b, err := eventbus.New(eventbus.Config{URL: "amqp://localhost:1/", Service: "test.widgets", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publishes(widgetMade); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = b.Publish(ctx, mustMessage(t, ctx, widgetMade, newWidget(1)))
	if !errors.Is(err, eventbus.ErrNotConnected) {
		t.Errorf("Publish without a broker = %v, want ErrNotConnected", err)
	}
}

func TestManyConcurrentPublishesAreAllConfirmedAndDelivered(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	tp := newTap(t, url, "test.external-observer")
	b := publisherBus(t, url)

	const publishers, each = 16, 100
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]eventbus.Message, each)
			for i := range batch {
				batch[i] = mustMessage(t, ctx, widgetMade, newWidget(p*each+i))
			}
			if err := b.Publish(ctx, batch...); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	if got := b.Stats().Published; got != publishers*each {
		t.Errorf("confirmed = %d, want %d", got, publishers*each)
	}
	waitFor(t, 20*time.Second, "every message at the tap", func() bool { return tp.count() == publishers*each })
	seen := map[string]bool{}
	for _, d := range tp.all() {
		if seen[d.MessageId] {
			t.Fatalf("message %s delivered twice", d.MessageId)
		}
		seen[d.MessageId] = true
	}
}

func TestUnhandledEventsAreAckedUnread(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	var handled atomic.Int32
	consumer := startBus(t, eventbus.Config{URL: url, Service: "test.consumer"}, func(b *eventbus.Bus) {
		if err := eventbus.Handle(b, widgetMade, func(ctx context.Context, ev eventbus.Event[widget]) error {
			handled.Add(1)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	// An event of a type nobody here handles, with a body that is not even
	// JSON: skipped without reading it, so not dead-lettered.
	rawPublish(t, url, amqp.Publishing{Type: "other.service.thing_happened", AppId: "other.service", MessageId: "x", ContentType: "text/plain", Body: []byte("not json")})
	waitFor(t, 10*time.Second, "the unhandled event to be skipped", func() bool { return consumer.Stats().Unhandled == 1 })
	if n := queueDepth(t, url, consumer.DeadLetterQueue()); n != 0 {
		t.Errorf("dead-letter queue has %d messages, want 0", n)
	}
	if handled.Load() != 0 {
		t.Error("handler ran for another type")
	}
	if d := queueDepth(t, url, "test.consumer"); d != 0 {
		t.Errorf("queue depth %d, want 0", d)
	}
}

// Unhandled deliveries are acked in batches (one multiple ack), but a batch
// never covers a delivery a handler still holds: here the first delivery
// is held by a handler that does not return, 50 unhandled ones follow it,
// and they are all acked while the held one stays unacknowledged. Stopped
// with the handler still running, the bus returns that one to the queue.
func TestBatchedAcksNeverCoverADeliveryAHandlerHolds(t *testing.T) {
	url, vhost := testinfra.NewVhost(t)
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{}, 1)
	b, err := eventbus.New(eventbus.Config{URL: url, Service: "test.consumer", Logger: quietLogger(), DrainTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := eventbus.Handle(b, widgetMade, func(ctx context.Context, ev eventbus.Event[widget]) error {
		started <- struct{}{}
		<-release
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cancel, done := runUntilHandling(t, url, b, started)
	for i := range 50 {
		rawPublish(t, url, amqp.Publishing{Type: "other.service.thing_happened", AppId: "other.service", MessageId: fmt.Sprint("x", i), ContentType: "application/json", Body: []byte("{}")})
	}
	waitFor(t, 10*time.Second, "50 unhandled deliveries", func() bool { return b.Stats().Unhandled == 50 })
	// The management API's counts lag by a few seconds.
	var q testinfra.QueueInfo
	waitFor(t, 20*time.Second, "only the held delivery unacknowledged", func() bool {
		q = testinfra.Queue(t, vhost, "test.consumer")
		return q.Messages == 1 && q.MessagesUnacknowledged == 1
	})

	cancel() // the handler is still running: the drain times out
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := queueDepth(t, url, "test.consumer"); n != 1 {
		t.Fatalf("%d messages back in the queue after stopping with a handler in flight, want 1 (the held one)", n)
	}
}

func TestMalformedEventsAreDeadLetteredAtOnceWithTheReason(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	var handled atomic.Int32
	consumer := startBus(t, eventbus.Config{URL: url, Service: "test.consumer"}, func(b *eventbus.Bus) {
		if err := eventbus.Handle(b, widgetMade, func(ctx context.Context, ev eventbus.Event[widget]) error {
			handled.Add(1)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	id := uuid.NewString()
	good := func(body string) amqp.Publishing {
		return amqp.Publishing{Type: "test.widgets.widget_made", AppId: "test.widgets", MessageId: id, ContentType: "application/json", DeliveryMode: 2, Body: []byte(body)}
	}
	valid := `{"uuid":"` + id + `","fired_at":"2026-11-22T10:00:00.000Z","widget":{"id":"w","name":"n","n":1}}`
	cases := []struct {
		name   string
		p      amqp.Publishing
		reason string
	}{
		{"invalid JSON", good(`{"uuid":`), "not a JSON object"},
		{"missing uuid", good(`{"fired_at":"2026-11-22T10:00:00.000Z","widget":{}}`), "no uuid"},
		{"bad uuid", func() amqp.Publishing {
			p := good(`{"uuid":"nope","fired_at":"2026-11-22T10:00:00.000Z","widget":{}}`)
			p.MessageId = "nope"
			return p
		}(), "not a UUID"},
		{"missing fired_at", good(`{"uuid":"` + id + `","widget":{}}`), "no fired_at"},
		{"fired_at without milliseconds", good(`{"uuid":"` + id + `","fired_at":"2026-11-22T10:00:00Z","widget":{}}`), "fired_at"},
		{"fired_at with microseconds", good(`{"uuid":"` + id + `","fired_at":"2026-11-22T10:00:00.000000Z","widget":{}}`), "fired_at"},
		{"message_id differs from uuid", func() amqp.Publishing { p := good(valid); p.MessageId = uuid.NewString(); return p }(), "differs"},
		{"missing entity", good(`{"uuid":"` + id + `","fired_at":"2026-11-22T10:00:00.000Z"}`), `no "widget"`},
		{"entity of the wrong shape", good(`{"uuid":"` + id + `","fired_at":"2026-11-22T10:00:00.000Z","widget":{"n":"one"}}`), "does not decode"},
		{"wrong content type", func() amqp.Publishing { p := good(valid); p.ContentType = "text/plain"; return p }(), "content_type"},
		{"app_id not the publisher of the type", func() amqp.Publishing { p := good(valid); p.AppId = "evil.service"; return p }(), "app_id"},
	}
	for _, c := range cases {
		rawPublish(t, url, c.p)
	}
	waitFor(t, 15*time.Second, "every malformed message dead-lettered", func() bool {
		return consumer.Stats().DeadLettered == uint64(len(cases))
	})
	dead := getAll(t, url, consumer.DeadLetterQueue())
	if len(dead) != len(cases) {
		t.Fatalf("dead-letter queue has %d messages, want %d", len(dead), len(cases))
	}
	for i, c := range cases {
		reason, _ := dead[i].Headers["x-dead-letter-reason"].(string)
		if !strings.Contains(reason, c.reason) {
			t.Errorf("%s: reason %q, want it to mention %q", c.name, reason, c.reason)
		}
		if string(dead[i].Body) != string(c.p.Body) || dead[i].Type != c.p.Type || dead[i].MessageId != c.p.MessageId {
			t.Errorf("%s: dead letter lost the original message or properties", c.name)
		}
		if dead[i].Headers["x-original-exchange"] != "sagittarius-a" {
			t.Errorf("%s: x-original-exchange = %v", c.name, dead[i].Headers["x-original-exchange"])
		}
	}
	if handled.Load() != 0 {
		t.Errorf("the handler ran %d times for malformed messages", handled.Load())
	}
}

func TestFailingHandlerIsRetriedThenDeadLetteredWhileOthersFlow(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	// Another service on the same broker: it must see each event exactly
	// once, never the consumer's retries.
	other := newTap(t, url, "test.bystander")

	var attempts atomic.Int32
	var okCount atomic.Int32
	poison := newWidget(666)
	consumer := startBus(t, eventbus.Config{
		URL: url, Service: "test.consumer", MaxAttempts: 3,
		RetryDelays: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond},
	}, func(b *eventbus.Bus) {
		if err := eventbus.Handle(b, widgetMade, func(ctx context.Context, ev eventbus.Event[widget]) error {
			if ev.Entity == poison {
				attempts.Add(1)
				if ev.Attempt != int(attempts.Load()) {
					t.Errorf("Attempt = %d on try %d", ev.Attempt, attempts.Load())
				}
				return errors.New("widget 666 is cursed")
			}
			okCount.Add(1)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	pub := publisherBus(t, url)
	ctx := context.Background()
	if err := pub.Publish(ctx, mustMessage(t, ctx, widgetMade, poison)); err != nil {
		t.Fatal(err)
	}
	const behind = 50
	for i := range behind {
		if err := pub.Publish(ctx, mustMessage(t, ctx, widgetMade, newWidget(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "events behind the poison one handled", func() bool { return okCount.Load() == behind })
	if attempts.Load() == 3 {
		t.Log("note: poison event exhausted its attempts before the others were handled")
	}
	waitFor(t, 15*time.Second, "the poison event dead-lettered", func() bool { return consumer.Stats().DeadLettered == 1 })
	if got := attempts.Load(); got != 3 {
		t.Errorf("handler ran %d times for the poison event, want 3", got)
	}
	if got := consumer.Stats().Retried; got != 2 {
		t.Errorf("retried = %d, want 2", got)
	}
	dead := getAll(t, url, consumer.DeadLetterQueue())
	if len(dead) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(dead))
	}
	reason, _ := dead[0].Headers["x-dead-letter-reason"].(string)
	if !strings.Contains(reason, "widget 666 is cursed") || !strings.Contains(reason, "3 times") {
		t.Errorf("reason = %q", reason)
	}
	if n, _ := dead[0].Headers["x-attempt"].(int64); n != 3 {
		t.Errorf("x-attempt = %v, want 3", dead[0].Headers["x-attempt"])
	}
	if dead[0].AppId != "test.widgets" || dead[0].Type != "test.widgets.widget_made" {
		t.Errorf("dead letter properties = %s %s", dead[0].AppId, dead[0].Type)
	}
	// The bystander saw the 51 events once each, and no retry.
	time.Sleep(300 * time.Millisecond)
	if n := other.count(); n != behind+1 {
		t.Errorf("another service's queue received %d messages, want %d (retries leaked to sagittarius-a?)", n, behind+1)
	}
}

func TestHandlerSucceedsOnALaterAttempt(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	var tries atomic.Int32
	done := make(chan int, 1)
	consumer := startBus(t, eventbus.Config{URL: url, Service: "test.consumer", RetryDelays: []time.Duration{50 * time.Millisecond}}, func(b *eventbus.Bus) {
		if err := eventbus.Handle(b, widgetMade, func(ctx context.Context, ev eventbus.Event[widget]) error {
			if tries.Add(1) < 3 {
				return errors.New("not yet")
			}
			done <- ev.Attempt
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	pub := publisherBus(t, url)
	ctx := context.Background()
	if err := pub.Publish(ctx, mustMessage(t, ctx, widgetMade, newWidget(1))); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-done:
		if a != 3 {
			t.Errorf("succeeded on Attempt %d, want 3", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler never succeeded")
	}
	waitFor(t, 5*time.Second, "ack", func() bool { return consumer.Stats().Handled == 1 })
	if consumer.Stats().DeadLettered != 0 {
		t.Error("dead-lettered a message that succeeded")
	}
}

func TestHandlerContextCarriesCausation(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	got := make(chan eventbus.Message, 1)
	startBus(t, eventbus.Config{URL: url, Service: "test.consumer"}, func(b *eventbus.Bus) {
		follow := eventbus.MustEventType[widget]("test.consumer", "widget_inspected", "widget")
		if err := eventbus.Handle(b, widgetMade, func(ctx context.Context, ev eventbus.Event[widget]) error {
			m, err := follow.New(ctx, ev.Entity)
			got <- m
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
	pub := publisherBus(t, url)
	ctx := eventbus.WithCorrelationID(context.Background(), "flow-1")
	in := mustMessage(t, ctx, widgetMade, newWidget(1))
	if err := pub.Publish(ctx, in); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Headers["causation_id"] != in.ID || m.Headers["correlation_id"] != "flow-1" {
			t.Errorf("headers = %v, want causation %s and correlation flow-1", m.Headers, in.ID)
		}
		if m.Headers["traceparent"][3:35] != in.Headers["traceparent"][3:35] {
			t.Errorf("trace id not propagated: %s vs %s", m.Headers["traceparent"], in.Headers["traceparent"])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler not called")
	}
}

func TestRegistrationRules(t *testing.T) {
	b, err := eventbus.New(eventbus.Config{URL: "amqp://localhost/", Service: "test.consumer", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	h := func(ctx context.Context, ev eventbus.Event[widget]) error { return nil }
	if err := eventbus.Handle(b, widgetMade, h); err != nil {
		t.Fatal(err)
	}
	if err := eventbus.Handle(b, widgetMade, h); err == nil {
		t.Error("a second handler for the same type was accepted")
	}
	if err := eventbus.Handle(b, eventbus.EventType[widget]{}, h); err == nil {
		t.Error("a zero EventType was accepted")
	}
	for _, bad := range []struct{ service, name, key string }{
		{"test.widgets", "OrderPlace", "order"},
		{"test.widgets", "place_order", "order"},
		{"Test.Widgets", "widget_made", "widget"},
		{"test.widgets", "widget_made", "uuid"},
		{"test.widgets", "widget_made", "Widget"},
	} {
		if _, err := eventbus.NewEventType[widget](bad.service, bad.name, bad.key); err == nil {
			t.Errorf("NewEventType(%q, %q, %q) accepted", bad.service, bad.name, bad.key)
		}
	}
	if _, err := eventbus.New(eventbus.Config{URL: "amqp://localhost/", Service: "orders"}); err == nil {
		t.Error("New accepted a service name without a domain")
	}
	if _, err := eventbus.New(eventbus.Config{URL: "http://localhost/", Service: "sales.orders"}); err == nil {
		t.Error("New accepted a non-AMQP URL")
	}
}
