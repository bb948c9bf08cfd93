package lint_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/contracts/catalog"
	"github.com/sagittarius-a/sagittarius/internal/contracts/fixture"
	"github.com/sagittarius-a/sagittarius/internal/contracts/lint"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

func TestResourcePath(t *testing.T) {
	cases := []struct {
		path  string
		items bool
		want  string // substring of the first message; "" = valid
	}{
		{"/v1", false, ""},
		{"/v1/orders", false, ""},
		{"/v1/orders/{id}", false, ""},
		{"/v1/stock-items/{product_id}/replenishments", false, ""},
		{"/v1/client-snapshots/", false, ""},
		{"/health", false, ""},
		{"/", false, ""},
		{"/v1/orders/7d2c/lines", true, ""},
		{"/orders", false, "version segment"},
		{"/v1/getCorreos", false, "lower-case-with-dashes"},
		{"/v1/order", false, "not plural"},
		{"/v1/status", false, "not plural"},
		{"/v1/place-orders", false, "verb"},
		{"/v1/orders/{id}/lines/{n}", false, "deeper"},
		{"/v1/orders/{id}/lines/{n}/taxes", false, "deeper"},
		{"/v1/{id}", false, "parameter"},
		{"/v1/orders/open", false, "item identifier"},
		{"/v1/stock_items", false, "lower-case-with-dashes"},
	}
	for _, c := range cases {
		got := lint.ResourcePath(c.path, c.items)
		switch {
		case c.want == "" && len(got) > 0:
			t.Errorf("%s: unexpected %v", c.path, got)
		case c.want != "" && (len(got) == 0 || !strings.Contains(strings.Join(got, "; "), c.want)):
			t.Errorf("%s: got %v, want a message containing %q", c.path, got, c.want)
		}
	}
}

func TestQueueNameAndEventType(t *testing.T) {
	for q, ok := range map[string]bool{
		"sales.orders": true, "sales.orders.retry.5000": true, "sales.orders.dead-letter": true,
		"sales.email-accounts-validations": true, "Sales.Orders": false, "orders": false, "sales.orders.retry.x": false,
		"sales.orders-queue": false, "audit.conformance": true,
	} {
		if _, err := lint.QueueName(q); (err == nil) != ok {
			t.Errorf("QueueName(%q) = %v, want ok=%v", q, err, ok)
		}
	}
	for typ, ok := range map[string]bool{
		"sales.orders.order_placed": true, "sales.orders.OrderPlaced": false, "sales.orders.place_order": false,
		"orders.order_placed": false, "sales.orders": false,
	} {
		if _, _, err := lint.EventType(typ); (err == nil) != ok {
			t.Errorf("EventType(%q) = %v, want ok=%v", typ, err, ok)
		}
	}
}

func manifests(t *testing.T) (contracts.Manifests, contracts.Manifests) {
	t.Helper()
	w, err := contracts.Generate(fixture.NewAPI(hal.MustBase("http://gw")).Service())
	if err != nil {
		t.Fatal(err)
	}
	g, err := contracts.Generate(fixture.Gadgets())
	if err != nil {
		t.Fatal(err)
	}
	return w, g
}

func TestGeneratedManifestsPass(t *testing.T) {
	w, g := manifests(t)
	for _, m := range []contracts.Manifests{w, g} {
		for _, f := range lint.OpenAPI("openapi", m.OpenAPI) {
			t.Error(f)
		}
	}
	wd, _ := catalog.Parse("widgets", w.AsyncAPI)
	gd, _ := catalog.Parse("gadgets", g.AsyncAPI)
	for _, f := range append(lint.AsyncAPI("widgets", wd), lint.AsyncAPI("gadgets", gd)...) {
		t.Error(f)
	}
	c, err := catalog.Build("sagittarius-a", []catalog.Doc{wd, gd})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range lint.Platform(c, func(d string) string { return d }) {
		t.Error(f)
	}
}

// mutate decodes doc, lets f change it and returns it re-encoded.
func mutate(t *testing.T, doc []byte, f func(m map[string]any)) []byte {
	t.Helper()
	m, err := catalog.Decode(doc)
	if err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func obj(v any, keys ...string) map[string]any {
	return catalog.Path(v, keys...).(map[string]any)
}

func rules(fs []lint.Finding) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule+" "+f.Where+" "+f.Message)
	}
	return strings.Join(out, "\n")
}

func TestAsyncAPIChecksWhatTheSchemaLeavesOpen(t *testing.T) {
	w, _ := manifests(t)
	cases := map[string]struct {
		f    func(m map[string]any)
		want string
	}{
		"exchange not fanout": {func(m map[string]any) {
			obj(m, "channels", "sagittarius-a", "bindings", "amqp", "exchange")["type"] = "topic"
		}, "exchange.type"},
		"exchange not durable": {func(m map[string]any) {
			obj(m, "channels", "sagittarius-a", "bindings", "amqp", "exchange")["durable"] = false
		}, "exchange.durable"},
		"queue misnamed": {func(m map[string]any) {
			obj(m, "channels", "test.widgets", "bindings", "amqp", "queue")["name"] = "WidgetsQueue"
		}, "queue.name"},
		"binding version": {func(m map[string]any) {
			obj(m, "channels", "test.widgets", "bindings", "amqp")["bindingVersion"] = "0.3.0"
		}, "bindingVersion"},
		"transient delivery": {func(m map[string]any) {
			obj(m, "channels", "sagittarius-a", "subscribe", "bindings", "amqp")["deliveryMode"] = 1
		}, "deliveryMode"},
		"message type binding": {func(m map[string]any) {
			obj(m, "components", "messages", "test.widgets.widget_added", "bindings", "amqp")["messageType"] = "widget_added"
		}, "messageType"},
		"fired_at pattern": {func(m map[string]any) {
			obj(m, "components", "messages", "test.widgets.widget_added", "payload", "properties", "fired_at")["pattern"] = ".*"
		}, "fired_at.pattern"},
		"uuid not required": {func(m map[string]any) {
			obj(m, "components", "messages", "test.widgets.widget_added", "payload")["required"] = []any{"fired_at", "widget"}
		}, "uuid must be required"},
		"publish on the exchange": {func(m map[string]any) {
			obj(m, "channels", "sagittarius-a")["publish"] = map[string]any{}
		}, "receives events from its queue"},
		"extra channel": {func(m map[string]any) {
			obj(m, "channels")["widgets"] = map[string]any{}
		}, "unexpected channel"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			d, err := catalog.Parse("widgets", mutate(t, w.AsyncAPI, c.f))
			if err != nil {
				t.Fatal(err)
			}
			got := rules(lint.AsyncAPI("widgets", d))
			if !strings.Contains(got, c.want) {
				t.Errorf("findings:\n%s\nwant one about %q", got, c.want)
			}
		})
	}
}

func TestOpenAPIChecks(t *testing.T) {
	w, _ := manifests(t)
	cases := map[string]struct {
		f    func(m map[string]any)
		want string
	}{
		"verb path": {func(m map[string]any) {
			p := obj(m, "paths")
			p["/v1/createWidget"] = p["/v1/widgets"]
		}, "resource-naming"},
		"error not problem": {func(m map[string]any) {
			op := obj(m, "paths", "/v1/widgets/{id}", "get", "responses")
			op["404"] = map[string]any{"description": "x", "content": map[string]any{"text/plain": map[string]any{}}}
		}, "problem-json"},
		"broken ref": {func(m map[string]any) {
			obj(m, "paths", "/v1/widgets/{id}", "get", "responses", "200", "content", "application/hal+json", "schema")["$ref"] = "#/components/schemas/Nope"
		}, "openapi"},
		"example not matching": {func(m map[string]any) {
			obj(m, "paths", "/v1/widgets/{id}", "get", "responses", "200", "content", "application/hal+json")["example"] = map[string]any{"id": 3}
		}, "openapi-valid"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got := rules(lint.OpenAPI("widgets", mutate(t, w.OpenAPI, c.f)))
			if !strings.Contains(got, c.want) {
				t.Errorf("findings:\n%s\nwant rule %q", got, c.want)
			}
		})
	}
}

func TestPlatformCrossChecks(t *testing.T) {
	w, g := manifests(t)
	parse := func(dir string, doc []byte) catalog.Doc {
		d, err := catalog.Parse(dir, doc)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// gadgets expects a field widgets does not publish, and an event nobody publishes.
	gadgets := mutate(t, g.AsyncAPI, func(m map[string]any) {
		widget := obj(m, "components", "schemas", "FixtureWidget")
		obj(widget, "properties")["colour"] = map[string]any{"type": "string"}
		widget["required"] = append(widget["required"].([]any), "colour")
		obj(widget, "properties", "version")["type"] = "string"
		msg := obj(m, "channels", "test.gadgets", "publish", "message")
		msg["oneOf"] = append(msg["oneOf"].([]any), map[string]any{"$ref": "#/components/messages/test.sprockets.sprocket_made"})
		obj(m, "components", "messages")["test.sprockets.sprocket_made"] = map[string]any{"payload": map[string]any{}}
	})
	c, err := catalog.Build("sagittarius-a", []catalog.Doc{parse("widgets", w.AsyncAPI), parse("gadgets", gadgets)})
	if err != nil {
		t.Fatal(err)
	}
	got := rules(lint.Platform(c, func(d string) string { return d }))
	for _, want := range []string{"/widget/colour: field removed", "/widget/version: type changed", "test.sprockets.sprocket_made, which no service publishes"} {
		if !strings.Contains(got, want) {
			t.Errorf("findings:\n%s\nwant %q", got, want)
		}
	}
	e, _ := c.Event("test.widgets.widget_added")
	if e.Publisher != "test.widgets" || len(e.Consumers) != 1 || e.Consumers[0] != "test.gadgets" {
		t.Errorf("widget_added: publisher %q consumers %v", e.Publisher, e.Consumers)
	}
}

func TestBreakingChanges(t *testing.T) {
	w, _ := manifests(t)
	t.Run("none", func(t *testing.T) {
		fs, err := lint.BreakingOpenAPI("o", w.OpenAPI, w.OpenAPI)
		if err != nil || len(fs) > 0 {
			t.Fatalf("%v %v", fs, err)
		}
	})
	openapi := map[string]struct {
		f    func(m map[string]any)
		want string
	}{
		"operation removed": {func(m map[string]any) { delete(obj(m, "paths", "/v1/widgets/{id}"), "delete") }, "operation DELETE /v1/widgets/{id} removed"},
		"field removed": {func(m map[string]any) {
			delete(obj(m, "components", "schemas", "FixtureWidget", "properties"), "name")
		}, "/name: field removed"},
		"type changed": {func(m map[string]any) {
			obj(m, "components", "schemas", "FixtureWidget", "properties", "version")["type"] = "string"
		}, "/version: type changed"},
		"new required request field": {func(m map[string]any) {
			r := obj(m, "components", "schemas", "FixtureAddRequest")
			r["required"] = append(r["required"].([]any), "colour")
		}, "/colour: field now required"},
		"new required parameter": {func(m map[string]any) {
			op := obj(m, "paths", "/v1/widgets", "get")
			op["parameters"] = append(op["parameters"].([]any), map[string]any{"name": "owner", "in": "query", "required": true, "schema": map[string]any{"type": "string"}})
		}, "new required parameter query:owner"},
		"success removed": {func(m map[string]any) { delete(obj(m, "paths", "/v1/widgets", "post", "responses"), "201") }, "successful answer 201 removed"},
	}
	for name, c := range openapi {
		t.Run(name, func(t *testing.T) {
			fs, err := lint.BreakingOpenAPI("o", w.OpenAPI, mutate(t, w.OpenAPI, c.f))
			if err != nil {
				t.Fatal(err)
			}
			if got := rules(fs); !strings.Contains(got, c.want) {
				t.Errorf("findings:\n%s\nwant %q", got, c.want)
			}
		})
	}
	// Adding an optional field or a new operation breaks nobody.
	fs, _ := lint.BreakingOpenAPI("o", w.OpenAPI, mutate(t, w.OpenAPI, func(m map[string]any) {
		obj(m, "components", "schemas", "FixtureWidget", "properties")["colour"] = map[string]any{"type": "string"}
		obj(m, "paths")["/v1/gizmos"] = obj(m, "paths", "/v1/widgets")
	}))
	if len(fs) > 0 {
		t.Errorf("additive change reported as breaking: %v", fs)
	}

	old, _ := catalog.Parse("widgets", w.AsyncAPI)
	asyncapi := map[string]struct {
		f    func(m map[string]any)
		want string
	}{
		"event renamed": {func(m map[string]any) {
			msg := obj(m, "channels", "sagittarius-a", "subscribe", "message")
			msg["oneOf"] = []any{map[string]any{"$ref": "#/components/messages/test.widgets.widget_created"}, msg["oneOf"].([]any)[1]}
		}, "test.widgets.widget_added is no longer published"},
		"payload field removed": {func(m map[string]any) {
			delete(obj(m, "components", "schemas", "FixtureWidget", "properties"), "price")
		}, "/widget/price: field removed"},
		"payload field optional": {func(m map[string]any) {
			obj(m, "components", "schemas", "FixtureWidget")["required"] = []any{"id"}
		}, "/widget/name: field no longer always present"},
	}
	for name, c := range asyncapi {
		t.Run(name, func(t *testing.T) {
			n, err := catalog.Parse("widgets", mutate(t, w.AsyncAPI, c.f))
			if err != nil {
				t.Fatal(err)
			}
			if got := rules(lint.BreakingAsyncAPI("a", old, n)); !strings.Contains(got, c.want) {
				t.Errorf("findings:\n%s\nwant %q", got, c.want)
			}
		})
	}
}
