package lint

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts/catalog"
)

// Expected values of the AsyncAPI manifests.
const (
	asyncAPIVersion    = "2.6.0"
	amqpBindingVersion = "0.2.0"
	firedAtPattern     = `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`
)

// AsyncAPI checks what the AsyncAPI 2.6 schema leaves open: the service and
// event names, the two channels (the fanout exchange sagittarius-a and the
// service's own queue) with their AMQP 0.2.0 bindings, the operations on
// them (published events under subscribe of the exchange, consumed events
// under publish of the queue), and every message: name = type property,
// messageType binding, content type, persistent delivery, and a payload
// with uuid, fired_at (YYYY-MM-DDTHH:mm:ss.sssZ) and the entity under its key.
func AsyncAPI(file string, d catalog.Doc) []Finding {
	var out []Finding
	add := func(where, rule, format string, args ...any) {
		out = append(out, Finding{File: file, Where: where, Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	root := d.Root
	if v, _ := root["asyncapi"].(string); v != asyncAPIVersion {
		add("asyncapi", "asyncapi-version", "version %q, want %s", v, asyncAPIVersion)
	}
	svc := d.Name
	if err := eventbus.ValidateServiceName(svc); err != nil {
		add("info.title", "service-name", "%v", err)
	}
	channels, _ := root["channels"].(map[string]any)
	for name := range channels {
		if name != eventbus.Exchange && name != svc {
			add("channels."+name, "channels", "unexpected channel: a service has the exchange %s and its own queue %s", eventbus.Exchange, svc)
		}
	}

	// The exchange.
	ex := "channels." + eventbus.Exchange
	if channels[eventbus.Exchange] == nil {
		add(ex, "channels", "no channel for the exchange %s", eventbus.Exchange)
	} else {
		b := catalog.Path(channels[eventbus.Exchange], "bindings", "amqp")
		expect(add, ex+".bindings.amqp", b, map[string]any{
			"is":                  "routingKey",
			"exchange.name":       eventbus.Exchange,
			"exchange.type":       "fanout",
			"exchange.durable":    true,
			"exchange.autoDelete": false,
			"bindingVersion":      amqpBindingVersion,
		})
		if catalog.Path(b, "queue") != nil {
			add(ex+".bindings.amqp.queue", "amqp-binding", "an exchange channel must not describe a queue (exchange and queue exclude each other)")
		}
		if catalog.Path(channels[eventbus.Exchange], "publish") != nil {
			add(ex+".publish", "operations", "a service receives events from its queue, not from the exchange: describe consumed events under publish of the queue channel %s", svc)
		}
		if op := catalog.Path(channels[eventbus.Exchange], "subscribe"); op != nil {
			expect(add, ex+".subscribe.bindings.amqp", catalog.Path(op, "bindings", "amqp"), map[string]any{
				"deliveryMode":   float64(2),
				"bindingVersion": amqpBindingVersion,
			})
		}
	}

	// The queue.
	q := "channels." + svc
	if channels[svc] == nil {
		add(q, "channels", "no channel for the service's own queue %s", svc)
	} else {
		b := catalog.Path(channels[svc], "bindings", "amqp")
		expect(add, q+".bindings.amqp", b, map[string]any{
			"is":               "queue",
			"queue.name":       svc,
			"queue.durable":    true,
			"queue.exclusive":  false,
			"queue.autoDelete": false,
			"bindingVersion":   amqpBindingVersion,
		})
		if catalog.Path(b, "exchange") != nil {
			add(q+".bindings.amqp.exchange", "amqp-binding", "a queue channel must not describe an exchange (exchange and queue exclude each other)")
		}
		if name, _ := catalog.Path(b, "queue", "name").(string); name != "" {
			if _, err := QueueName(name); err != nil {
				add(q+".bindings.amqp.queue.name", "queue-name", "%v", err)
			}
		}
		if catalog.Path(channels[svc], "subscribe") != nil {
			add(q+".subscribe", "operations", "nothing but the broker publishes to a service's queue: describe published events under subscribe of %s", eventbus.Exchange)
		}
	}

	// The messages.
	published := d.Published(eventbus.Exchange)
	for _, t := range published {
		where := "components.messages." + t
		m := d.Message(t)
		if m == nil {
			add(where, "messages", "subscribe of %s refers to a message that is not defined", eventbus.Exchange)
			continue
		}
		service, _, err := EventType(t)
		if err != nil {
			add(where, "event-name", "%v", err)
		}
		if service != svc {
			add(where, "event-owner", "%s publishes %s, an event of %s: a service publishes only its own events", svc, t, service)
		}
		out = append(out, checkMessage(file, where, t, m)...)
	}
	for _, t := range d.Consumed() {
		where := "components.messages." + t
		m := d.Message(t)
		if m == nil {
			add(where, "messages", "publish of %s refers to a message that is not defined", svc)
			continue
		}
		if _, _, err := EventType(t); err != nil {
			add(where, "event-name", "%v", err)
		}
		out = append(out, checkMessage(file, where, t, m)...)
	}
	return out
}

// checkMessage checks one message of type t.
func checkMessage(file, where, t string, m map[string]any) []Finding {
	var out []Finding
	add := func(w, rule, format string, args ...any) {
		out = append(out, Finding{File: file, Where: w, Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	service := t[:max(strings.LastIndex(t, "."), 0)]
	expect(add, where, m, map[string]any{
		"name":                                t,
		"contentType":                         "application/json",
		"bindings.amqp.messageType":           t,
		"bindings.amqp.bindingVersion":        amqpBindingVersion,
		"x-amqp-properties.type":              t,
		"x-amqp-properties.app_id":            service,
		"x-amqp-properties.delivery_mode":     float64(2),
		"x-amqp-properties.content_type":      "application/json",
		"payload.type":                        "object",
		"payload.properties.uuid.type":        "string",
		"payload.properties.uuid.format":      "uuid",
		"payload.properties.fired_at.type":    "string",
		"payload.properties.fired_at.pattern": firedAtPattern,
	})
	key, _ := m["x-entity-key"].(string)
	if key == "" {
		add(where+".x-entity-key", "payload", "the message does not name its entity key")
	} else if catalog.Path(m, "payload", "properties", key) == nil {
		add(where+".payload.properties", "payload", "the entity %q is not a payload property", key)
	}
	required := map[string]bool{}
	reqs, _ := catalog.Path(m, "payload", "required").([]any)
	for _, r := range reqs {
		s, _ := r.(string)
		required[s] = true
	}
	for _, f := range []string{"uuid", "fired_at", key} {
		if f != "" && !required[f] {
			add(where+".payload.required", "payload", "%s must be required", f)
		}
	}
	return out
}

// expect reports every dotted path of want whose value in obj differs.
func expect(add func(where, rule, format string, args ...any), where string, obj any, want map[string]any) {
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		got := catalog.Path(obj, strings.Split(k, ".")...)
		if got != want[k] {
			rule := "amqp-binding"
			if !strings.Contains(where, "bindings") && !strings.HasPrefix(k, "bindings") {
				rule = "message"
			}
			add(where+"."+k, rule, "is %v, want %v", show(got), want[k])
		}
	}
}

func show(v any) string {
	if v == nil {
		return "missing"
	}
	return fmt.Sprintf("%v", v)
}
