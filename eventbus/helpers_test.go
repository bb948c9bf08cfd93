package eventbus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
)

// widget is the entity of the test events.
type widget struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	N    int    `json:"n"`
}

var (
	widgetMade    = eventbus.MustEventType[widget]("test.widgets", "widget_made", "widget")
	widgetShipped = eventbus.MustEventType[widget]("test.widgets", "widget_shipped", "widget")
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startBus creates, registers with reg, and runs a bus on url; it is stopped
// in cleanup.
func startBus(t *testing.T, cfg eventbus.Config, reg func(b *eventbus.Bus)) *eventbus.Bus {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	b, err := eventbus.New(cfg)
	if err != nil {
		t.Fatalf("eventbus.New: %v", err)
	}
	if reg != nil {
		reg(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, 20*time.Second, "bus connected", func() bool { return b.Healthy() == nil })
	return b
}

// runUntilHandling runs b (not stopped in cleanup: the test cancels it with
// stop and reads Run's result from done), publishes one widget_made on url
// and waits until b's handler signals started.
func runUntilHandling(t *testing.T, url string, b *eventbus.Bus, started <-chan struct{}) (stop context.CancelFunc, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- b.Run(ctx) }()
	waitFor(t, 20*time.Second, "bus connected", func() bool { return b.Healthy() == nil })
	pub := publisherBus(t, url)
	if err := pub.Publish(context.Background(), mustMessage(t, context.Background(), widgetMade, newWidget(1))); err != nil {
		cancel()
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("handler not started")
	}
	return cancel, result
}

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tap is a plain amqp091-go consumer of its own queue bound to sagittarius-a:
// what any external application sees.
type tap struct {
	mu   sync.Mutex
	msgs []amqp.Delivery
}

func newTap(t *testing.T, url, queue string) *tap {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(eventbus.Exchange, "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(queue, "", eventbus.Exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{}
	go func() {
		for d := range ds {
			tp.mu.Lock()
			tp.msgs = append(tp.msgs, d)
			tp.mu.Unlock()
		}
	}()
	return tp
}

func (tp *tap) all() []amqp.Delivery {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]amqp.Delivery(nil), tp.msgs...)
}

func (tp *tap) count() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return len(tp.msgs)
}

// rawPublisher publishes arbitrary messages, as a misbehaving client would.
func rawPublish(t *testing.T, url string, p amqp.Publishing) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirm(eventbus.Exchange, "", false, false, p)
	if err != nil {
		t.Fatal(err)
	}
	if !dc.Wait() {
		t.Fatal("raw publish not confirmed")
	}
}

// getAll drains queue with basic.get and returns its messages (acked).
func getAll(t *testing.T, url, queue string) []amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var out []amqp.Delivery
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("get %s: %v", queue, err)
		}
		if !ok {
			return out
		}
		out = append(out, d)
	}
}

// queueDepth returns the number of ready messages in queue.
func queueDepth(t *testing.T, url, queue string) int {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect %s: %v", queue, err)
	}
	return q.Messages
}

func newWidget(i int) widget { return widget{ID: fmt.Sprintf("w-%d", i), Name: "widget", N: i} }

func mustMessage(t testing.TB, ctx context.Context, et eventbus.EventType[widget], w widget) eventbus.Message {
	t.Helper()
	m, err := et.New(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func decodeBody(t *testing.T, body []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("payload is not a JSON object: %v: %s", err, body)
	}
	return m
}

func jsonUnmarshal(raw json.RawMessage, v any) error { return json.Unmarshal(raw, v) }
