package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/contracts/lint"
)

// Message is what the audit reads of one AMQP message.
type Message struct {
	MessageID    string
	Type         string
	AppID        string
	ContentType  string
	DeliveryMode uint8
	Headers      map[string]any
	Body         []byte
}

// FromDelivery takes the audited properties of d.
func FromDelivery(d amqp.Delivery) Message {
	return Message{MessageID: d.MessageId, Type: d.Type, AppID: d.AppId, ContentType: d.ContentType,
		DeliveryMode: d.DeliveryMode, Headers: d.Headers, Body: d.Body}
}

// Contracts checks an event payload against the publisher's manifest
// (contracttest.Contracts implements it).
type Contracts interface {
	CheckEvent(msgType string, body []byte) error
}

// Rules are the message rules of the guideline. The zero value checks the
// properties and the envelope; with Contracts it also checks every payload
// against the publisher's AsyncAPI manifest, and with EntityKeys (type ->
// entity key, from the manifests) that the entity sits under its key.
type Rules struct {
	Contracts  Contracts
	EntityKeys map[string]string
}

var (
	firedAtRE     = regexp.MustCompile(contracts.FiredAtPattern)
	traceparentRE = regexp.MustCompile(contracts.TraceparentPattern)
	entityKeyRE   = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
)

// Message checks one message published to sagittarius-a:
//
//	message_id     the event's UUID
//	type           domain-name.subdomain-name.event_name, the event in the past tense
//	app_id         the publishing service, the domain-name.subdomain-name of the type
//	delivery_mode  2 (persistent)
//	content_type   application/json
//	payload        a JSON object with uuid (= message_id), fired_at (YYYY-MM-DDTHH:mm:ss.sssZ)
//	               and the entity as an object under a lower_snake_case key
//	headers        correlation_id present; traceparent, when present, W3C
//	contract       the payload matches the publisher's AsyncAPI manifest (with Rules.Contracts)
func (r Rules) Message(m Message) []Violation {
	subject := fmt.Sprintf("message %s (%s)", orNone(m.MessageID), orNone(m.Type))
	var out []Violation
	add := func(rule, format string, args ...any) {
		out = append(out, Violation{Rule: rule, Subject: subject, Detail: fmt.Sprintf(format, args...)})
	}
	if _, err := uuid.Parse(m.MessageID); err != nil || len(m.MessageID) != 36 {
		add("message_id", "message_id %q is not a UUID: the event's uuid belongs there", m.MessageID)
	}
	service, _, err := lint.EventType(m.Type)
	if err != nil {
		add("type", "%v", err)
	}
	switch {
	case m.AppID == "":
		add("app_id", "no app_id: it names the publishing service")
	case eventbus.ValidateServiceName(m.AppID) != nil:
		add("app_id", "%v", eventbus.ValidateServiceName(m.AppID))
	case err == nil && m.AppID != service:
		add("app_id", "app_id %s, but the type belongs to %s", m.AppID, service)
	}
	if m.DeliveryMode != amqp.Persistent {
		add("delivery_mode", "delivery mode %d, want 2 (persistent)", m.DeliveryMode)
	}
	if m.ContentType != "application/json" {
		add("content_type", "content type %q, want application/json", m.ContentType)
	}
	if _, ok := m.Headers[eventbus.HeaderCorrelationID].(string); !ok {
		add("headers", "no %s header", eventbus.HeaderCorrelationID)
	}
	if tp, ok := m.Headers[eventbus.HeaderTraceparent]; ok {
		if s, _ := tp.(string); !traceparentRE.MatchString(s) {
			add("headers", "traceparent %v is not W3C trace context", tp)
		}
	}

	var payload map[string]json.RawMessage
	if err := json.Unmarshal(m.Body, &payload); err != nil {
		add("payload", "not a JSON object: %v", err)
		return out
	}
	var id string
	if err := json.Unmarshal(payload["uuid"], &id); err != nil {
		add("payload", "no uuid string")
	} else if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		add("payload", "uuid %q is not a UUID", id)
	} else if id != m.MessageID {
		add("payload", "uuid %s differs from message_id %s", id, m.MessageID)
	}
	var fired string
	if err := json.Unmarshal(payload["fired_at"], &fired); err != nil {
		add("fired_at", "no fired_at string")
	} else if !firedAtRE.MatchString(fired) {
		add("fired_at", "fired_at %q is not YYYY-MM-DDTHH:mm:ss.sssZ", fired)
	} else if _, err := time.Parse(eventbus.FiredAtLayout, fired); err != nil {
		add("fired_at", "fired_at %q: %v", fired, err)
	}
	if key, ok := r.EntityKeys[m.Type]; ok {
		if !isObject(payload[key]) {
			add("entity", "no %q object: the entity travels under its key", key)
		}
	} else {
		var entities []string
		for k, v := range payload {
			if k != "uuid" && k != "fired_at" && isObject(v) {
				entities = append(entities, k)
			}
		}
		switch {
		case len(entities) == 0:
			add("entity", "no entity object besides uuid and fired_at")
		case len(entities) > 1:
			add("entity", "several objects %v: want the entity under one key", entities)
		case !entityKeyRE.MatchString(entities[0]):
			add("entity", "entity key %q is not lower_snake_case", entities[0])
		}
	}
	if r.Contracts != nil && err == nil {
		if cerr := r.Contracts.CheckEvent(m.Type, m.Body); cerr != nil {
			add("contract", "%v", cerr)
		}
	}
	return out
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
