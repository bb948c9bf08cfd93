package eventbus_test

import (
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
)

func TestReadDeadLetter(t *testing.T) {
	const id = "0b6f7c1e-2d4a-4e8b-9c3f-5a1d2e3f4a5b"
	good := `{"uuid":"` + id + `","fired_at":"2026-11-22T10:00:00.000Z","order":{"id":"o1"}}`
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	bus := amqp.Table{eventbus.HeaderDeadReason: "permanent: order o1 unknown", eventbus.HeaderAttempt: int64(3),
		eventbus.HeaderDeadAt: "2026-11-22T10:00:05.000Z", eventbus.HeaderRetries: int32(2),
		eventbus.HeaderTraceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "blob": []byte{0xff, 0x00}}
	dl := eventbus.ReadDeadLetter(id, "sales.orders.order_placed", "sales.orders", "application/json", "", time.Time{}, bus, []byte(good), now)
	if dl.Malformed != "" || dl.Reason != "permanent: order o1 unknown" || dl.Attempts != 3 || dl.Retries != 2 ||
		!dl.DeadAt.Equal(time.Date(2026, 11, 22, 10, 0, 5, 0, time.UTC)) || dl.DeadAtRaw == "" || dl.Traceparent == "" {
		t.Fatalf("a dead letter of the bus: %+v", dl)
	}
	if s, _ := dl.Headers["blob"].(string); !strings.HasPrefix(s, "base64:") {
		t.Fatalf("binary header: %#v", dl.Headers["blob"])
	}

	// Dead-lettered by the broker (a quorum queue's delivery limit): no bus headers.
	broker := amqp.Table{"x-delivery-count": int64(21), "x-death": []any{amqp.Table{"reason": "delivery_limit", "queue": "sales.orders"}}}
	dl = eventbus.ReadDeadLetter(id, "sales.orders.order_placed", "sales.orders", "application/json", "", time.Time{}, broker, []byte(good), now)
	if !strings.Contains(dl.Reason, "delivery_limit") || dl.Attempts != 21 || !dl.DeadAt.Equal(now) || dl.DeadAtRaw != "" {
		t.Fatalf("a dead letter of the broker: %+v", dl)
	}

	for _, tt := range []struct {
		name, msgID, appID, ctype, body, want string
	}{
		{"not JSON", id, "sales.orders", "application/json", `{"uuid": "not JSON`, "not a JSON object"},
		{"no message id", "", "sales.orders", "application/json", good, "message_id is missing"},
		{"uuid differs", "1b6f7c1e-2d4a-4e8b-9c3f-5a1d2e3f4a5b", "sales.orders", "application/json", good, "differs from payload uuid"},
		{"forged publisher", id, "finance.payments", "application/json", good, "does not publish type"},
		{"not json content", id, "sales.orders", "text/plain", good, "content_type"},
		{"bad fired_at", id, "sales.orders", "application/json", `{"uuid":"` + id + `","fired_at":"2026-11-22 10:00:00"}`, "fired_at"},
	} {
		dl := eventbus.ReadDeadLetter(tt.msgID, "sales.orders.order_placed", tt.appID, tt.ctype, "", time.Time{}, bus, []byte(tt.body), now)
		if !strings.Contains(dl.Malformed, tt.want) {
			t.Errorf("%s: malformed %q, want it to say %q", tt.name, dl.Malformed, tt.want)
		}
	}
}
