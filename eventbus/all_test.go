package eventbus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// A catch-all handler receives every event type that has no handler of its
// own, raw (type, publisher, headers, payload, entity), once per uuid; a
// typed handler keeps its types; the service's own events are not handed to
// it; a malformed event, and an event of a known type whose entity does not
// decode, are dead-lettered.
func TestHandleAllReceivesEveryOtherTypeOncePerUUID(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := migratedDB(t)
	var mu sync.Mutex
	var raw []eventbus.RawEvent
	typed := 0
	noted := eventbus.MustEventType[widget]("test.observer", "widget_noted", "widget")
	consumer := startBus(t, eventbus.Config{URL: url, Service: "test.observer"}, func(b *eventbus.Bus) {
		if err := b.Publishes(noted); err != nil {
			t.Fatal(err)
		}
		if err := eventbus.Handle(b, widgetShipped, func(ctx context.Context, ev eventbus.Event[widget]) error {
			mu.Lock()
			typed++
			mu.Unlock()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := eventbus.HandleAll(b, db, func(ctx context.Context, tx *sqlx.Tx, ev eventbus.RawEvent) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, n) VALUES (?, 1)`, ev.UUID); err != nil {
				return err
			}
			mu.Lock()
			raw = append(raw, ev)
			mu.Unlock()
			return nil
		}, widgetMade, widgetShipped, noted); err != nil {
			t.Fatal(err)
		}
		var consumed []string
		for _, e := range b.Consumed() {
			consumed = append(consumed, e.Type())
		}
		if want := []string{widgetMade.Type(), widgetShipped.Type()}; fmt.Sprint(consumed) != fmt.Sprint(want) {
			t.Errorf("Consumed %v, want %v (known types, not its own)", consumed, want)
		}
		if err := eventbus.HandleAll(b, db, func(context.Context, *sqlx.Tx, eventbus.RawEvent) error { return nil }); err == nil {
			t.Error("a second HandleAll was accepted")
		}
		if !b.HandlesAll() {
			t.Error("HandlesAll is false after HandleAll")
		}
	})
	pub := publisherBus(t, url)
	ctx := eventbus.WithCorrelationID(context.Background(), "corr-1")
	made := mustMessage(t, ctx, widgetMade, newWidget(1))
	made.Headers["actor"] = "alice"
	shipped := mustMessage(t, ctx, widgetShipped, newWidget(1))
	for _, m := range []eventbus.Message{made, made, shipped} { // made twice: a redelivery
		if err := pub.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	// Its own event: not for the catch-all.
	if err := consumer.Publish(context.Background(), mustMessage(t, ctx, noted, newWidget(2))); err != nil {
		t.Fatal(err)
	}
	// A known type whose entity does not decode into its Go type.
	rawPublish(t, url, amqp.Publishing{Type: widgetMade.Type(), AppId: "test.widgets", MessageId: "6b0c5f0e-9a4e-4c1b-8f43-3c2f4b1e7a10",
		ContentType: "application/json", Body: []byte(`{"uuid":"6b0c5f0e-9a4e-4c1b-8f43-3c2f4b1e7a10","fired_at":"2023-05-17T21:01:09.000Z","widget":{"id":42}}`)})
	// Malformed: fired_at in the guideline's wrong example format.
	rawPublish(t, url, amqp.Publishing{Type: "other.service.thing_happened", AppId: "other.service", MessageId: "5b0c5f0e-9a4e-4c1b-8f43-3c2f4b1e7a10",
		ContentType: "application/json", Body: []byte(`{"uuid":"5b0c5f0e-9a4e-4c1b-8f43-3c2f4b1e7a10","fired_at":"2023-05-17 21:01:09","thing":{}}`)})
	waitFor(t, 10*time.Second, "every delivery settled", func() bool {
		s := consumer.Stats()
		return s.Handled == 3 && s.Duplicates == 1 && s.DeadLettered == 2 && s.Unhandled == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if typed != 1 {
		t.Errorf("typed handler ran %d times, want 1", typed)
	}
	if len(raw) != 1 {
		t.Fatalf("catch-all ran %d times, want 1 (widget_made once)", len(raw))
	}
	ev := raw[0]
	if ev.UUID != made.ID || ev.Type != widgetMade.Type() || ev.AppID != "test.widgets" || ev.CorrelationID != "corr-1" ||
		ev.Traceparent == "" || ev.CausationID != "" || ev.Headers["actor"] != "alice" || ev.EntityKey != "widget" || !ev.FiredAt.Equal(made.FiredAt) {
		t.Errorf("raw event %+v", ev)
	}
	var w widget
	if err := json.Unmarshal(ev.Entity, &w); err != nil || w != newWidget(1) {
		t.Errorf("entity %s: %v", ev.Entity, err)
	}
	if string(ev.Payload) != string(made.Body) {
		t.Errorf("payload %s, want %s", ev.Payload, made.Body)
	}
	if n := countRows(t, db, `SELECT COUNT(*) FROM eventbus_inbox WHERE uuid = ?`, made.ID); n != 1 {
		t.Errorf("inbox has %d rows for the event, want 1", n)
	}
	reasons := map[string]bool{}
	for _, d := range getAll(t, url, consumer.DeadLetterQueue()) {
		r, _ := d.Headers[eventbus.HeaderDeadReason].(string)
		reasons[d.MessageId[:8]+" "+strings.SplitN(r, ":", 2)[0]] = true
	}
	if want := map[string]bool{"5b0c5f0e fired_at \"2023-05-17 21": true, "6b0c5f0e entity does not decode into eventbus_test.widget": true}; fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Errorf("dead letters %v, want %v", reasons, want)
	}
}
