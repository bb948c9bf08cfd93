package conformance_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/conformance"
	"github.com/sagittarius-a/sagittarius/internal/contracts/fixture"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// good returns a message exactly as the event bus publishes it.
func good(t *testing.T) conformance.Message {
	t.Helper()
	w := fixture.Widget{ID: "00000000-0000-4000-8000-000000000001", Name: "cog", Status: "active",
		Price: fixture.Money{Amount: 1, Currency: "EUR"}, Version: 1, CreatedAt: time.Now().UTC(), Links: hal.Links{}}
	w.Links.Set("self", "http://gw/widgets/v1/widgets/1")
	msg, err := fixture.WidgetAdded.New(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]any{}
	for k, v := range msg.Headers {
		headers[k] = v
	}
	return conformance.Message{MessageID: msg.ID, Type: msg.Type, AppID: msg.AppID, ContentType: "application/json",
		DeliveryMode: 2, Headers: headers, Body: msg.Body}
}

func TestMessageRules(t *testing.T) {
	withBody := func(body string) func(m *conformance.Message) {
		return func(m *conformance.Message) { m.Body = []byte(body) }
	}
	cases := []struct {
		name   string
		change func(m *conformance.Message)
		rule   string // "" = conforms
	}{
		{"as the bus publishes it", func(m *conformance.Message) {}, ""},
		{"transient", func(m *conformance.Message) { m.DeliveryMode = 1 }, "delivery_mode"},
		{"no delivery mode", func(m *conformance.Message) { m.DeliveryMode = 0 }, "delivery_mode"},
		{"text content", func(m *conformance.Message) { m.ContentType = "text/plain" }, "content_type"},
		{"message id not a uuid", func(m *conformance.Message) { m.MessageID = "42" }, "message_id"},
		{"camel case type", func(m *conformance.Message) { m.Type = "test.widgets.WidgetAdded" }, "type"},
		{"present tense type", func(m *conformance.Message) { m.Type = "test.widgets.add_widget" }, "type"},
		{"type without service", func(m *conformance.Message) { m.Type = "widget_added" }, "type"},
		{"no app id", func(m *conformance.Message) { m.AppID = "" }, "app_id"},
		{"app id of another service", func(m *conformance.Message) { m.AppID = "test.gadgets" }, "app_id"},
		{"no correlation id", func(m *conformance.Message) { delete(m.Headers, "correlation_id") }, "headers"},
		{"bad traceparent", func(m *conformance.Message) { m.Headers["traceparent"] = "nope" }, "headers"},
		{"not json", withBody(`{`), "payload"},
		{"fired_at with space", withBody(`{"uuid":"UUID","fired_at":"2023-05-17 21:01:09","widget":{}}`), "fired_at"},
		{"fired_at in microseconds", withBody(`{"uuid":"UUID","fired_at":"2022-06-29T00:10:05.938545Z","widget":{}}`), "fired_at"},
		{"no fired_at", withBody(`{"uuid":"UUID","widget":{}}`), "fired_at"},
		{"uuid differs", withBody(`{"uuid":"7d2c4e5f-0b1a-4c3d-9e8f-1a2b3c4d5e6f","fired_at":"2026-11-22T10:00:00.000Z","widget":{}}`), "payload"},
		{"no entity", withBody(`{"uuid":"UUID","fired_at":"2026-11-22T10:00:00.000Z"}`), "entity"},
		{"two entities", withBody(`{"uuid":"UUID","fired_at":"2026-11-22T10:00:00.000Z","a":{},"b":{}}`), "entity"},
		{"camel case entity key", withBody(`{"uuid":"UUID","fired_at":"2026-11-22T10:00:00.000Z","Widget":{}}`), "entity"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := good(t)
			id := m.MessageID
			c.change(&m)
			m.Body = []byte(strings.ReplaceAll(string(m.Body), "UUID", id))
			vs := conformance.Rules{}.Message(m)
			if c.rule == "" {
				if len(vs) > 0 {
					t.Fatalf("violations %v", vs)
				}
				return
			}
			for _, v := range vs {
				if v.Rule == c.rule {
					return
				}
			}
			t.Fatalf("violations %v, want one of rule %s", vs, c.rule)
		})
	}
}

func TestMessageAgainstManifests(t *testing.T) {
	rules, services, err := conformance.FromManifests(manifests(t))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(services, ",") != "test.gadgets,test.widgets" {
		t.Errorf("services %v", services)
	}
	m := good(t)
	if vs := rules.Message(m); len(vs) > 0 {
		t.Fatalf("a real event: %v", vs)
	}
	m.Body = []byte(strings.Replace(string(m.Body), `"widget":`, `"thing":`, 1))
	vs := rules.Message(m)
	found := map[string]bool{}
	for _, v := range vs {
		found[v.Rule] = true
	}
	if !found["entity"] || !found["contract"] {
		t.Errorf("entity under the wrong key: %v", vs)
	}
	m = good(t)
	m.Type = "test.widgets.widget_painted"
	if vs := rules.Message(m); len(vs) == 0 || vs[0].Rule != "contract" {
		t.Errorf("an undocumented event type: %v", vs)
	}
}
