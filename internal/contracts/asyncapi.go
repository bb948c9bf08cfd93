package contracts

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/swaggest/jsonschema-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
)

// Versions of the generated AsyncAPI documents and of their AMQP bindings.
const (
	AsyncAPIVersion    = "2.6.0"
	AMQPBindingVersion = "0.2.0"
	// VHost is the RabbitMQ virtual host of the platform.
	VHost = "sagittarius"
	// FiredAtPattern is the guideline's fired_at format, YYYY-MM-DDTHH:mm:ss.sssZ.
	FiredAtPattern = `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`
	// TraceparentPattern is the W3C trace context header.
	TraceparentPattern = `^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`
)

// The AsyncAPI 2.6 document, as much of it as the generator writes. Field
// order is the order of the output.
type asyncDoc struct {
	AsyncAPI           string                  `json:"asyncapi"`
	ID                 string                  `json:"id"`
	Info               asyncInfo               `json:"info"`
	Servers            map[string]asyncServer  `json:"servers"`
	DefaultContentType string                  `json:"defaultContentType"`
	Channels           map[string]asyncChannel `json:"channels"`
	Components         asyncComponents         `json:"components"`
	Tags               []asyncTag              `json:"tags,omitempty"`
}

type asyncInfo struct {
	Title       string       `json:"title"`
	Version     string       `json:"version"`
	Description string       `json:"description"`
	Contact     asyncContact `json:"contact"`
	License     asyncLicense `json:"license"`
}

type asyncContact struct {
	Name  string `json:"name"`
	URL   string `json:"url"`
	Email string `json:"email"`
}

type asyncLicense struct {
	Name string `json:"name"`
}

// The contact and license of every manifest.
var (
	contact = asyncContact{Name: "Sagittarius platform team", URL: "http://127.0.0.1:8080/docs/", Email: "platform@sagittarius.example"}
	license = asyncLicense{Name: "Proprietary"}
)

type asyncServer struct {
	URL             string                   `json:"url"`
	Protocol        string                   `json:"protocol"`
	ProtocolVersion string                   `json:"protocolVersion"`
	Description     string                   `json:"description"`
	Variables       map[string]asyncVariable `json:"variables"`
}

type asyncVariable struct {
	Default     string `json:"default"`
	Description string `json:"description"`
}

type asyncChannel struct {
	Description string          `json:"description"`
	Servers     []string        `json:"servers,omitempty"`
	Subscribe   *asyncOperation `json:"subscribe,omitempty"`
	Publish     *asyncOperation `json:"publish,omitempty"`
	Bindings    amqpBindings    `json:"bindings"`
}

type amqpBindings struct {
	AMQP any `json:"amqp"`
}

type asyncOperation struct {
	OperationID string       `json:"operationId"`
	Summary     string       `json:"summary"`
	Description string       `json:"description"`
	Bindings    amqpBindings `json:"bindings"`
	Message     oneOfRefs    `json:"message"`
}

type oneOfRefs struct {
	OneOf []ref `json:"oneOf"`
}

type ref struct {
	Ref string `json:"$ref"`
}

// AMQP bindings 0.2.0.
type amqpChannelBinding struct {
	Is             string        `json:"is"`
	Exchange       *amqpExchange `json:"exchange,omitempty"`
	Queue          *amqpQueue    `json:"queue,omitempty"`
	BindingVersion string        `json:"bindingVersion"`
}

type amqpExchange struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Durable    bool   `json:"durable"`
	AutoDelete bool   `json:"autoDelete"`
	VHost      string `json:"vhost"`
}

type amqpQueue struct {
	Name       string `json:"name"`
	Durable    bool   `json:"durable"`
	Exclusive  bool   `json:"exclusive"`
	AutoDelete bool   `json:"autoDelete"`
	VHost      string `json:"vhost"`
}

type amqpOperationBinding struct {
	DeliveryMode   int    `json:"deliveryMode,omitempty"`
	Mandatory      *bool  `json:"mandatory,omitempty"`
	Timestamp      *bool  `json:"timestamp,omitempty"`
	Ack            *bool  `json:"ack,omitempty"`
	BindingVersion string `json:"bindingVersion"`
}

type amqpMessageBinding struct {
	MessageType    string `json:"messageType"`
	BindingVersion string `json:"bindingVersion"`
}

type asyncComponents struct {
	Messages map[string]asyncMessage `json:"messages"`
	Schemas  map[string]any          `json:"schemas"`
}

type asyncMessage struct {
	MessageID     string           `json:"messageId"`
	Name          string           `json:"name"`
	Title         string           `json:"title"`
	Summary       string           `json:"summary"`
	Description   string           `json:"description"`
	ContentType   string           `json:"contentType"`
	CorrelationID correlationID    `json:"correlationId"`
	Headers       any              `json:"headers"`
	Payload       any              `json:"payload"`
	Tags          []asyncTag       `json:"tags"`
	Bindings      amqpBindings     `json:"bindings"`
	Examples      []messageExample `json:"examples"`
	// AMQPProperties documents the AMQP message properties, which AMQP
	// bindings 0.2.0 cannot express (a specification extension).
	AMQPProperties map[string]any `json:"x-amqp-properties"`
	// EntityKey names the payload field that holds the entity.
	EntityKey string `json:"x-entity-key"`
	// Publisher is the service that publishes the event.
	Publisher string `json:"x-publisher"`
}

type correlationID struct {
	Description string `json:"description"`
	Location    string `json:"location"`
}

type asyncTag struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

type messageExample struct {
	Name    string         `json:"name"`
	Summary string         `json:"summary"`
	Headers map[string]any `json:"headers"`
	Payload any            `json:"payload"`
}

// asyncAPI generates the AsyncAPI document of s as indented JSON.
func asyncAPI(s Service) ([]byte, error) {
	published, consumed := s.Events.Published(), s.Events.Consumed()
	for _, e := range published {
		if e.Service != s.Name {
			return nil, fmt.Errorf("publishes %s, an event of another service", e.Type())
		}
	}
	doc := asyncDoc{
		AsyncAPI: AsyncAPIVersion,
		ID:       "urn:sagittarius:" + s.Name,
		Info: asyncInfo{
			Title:   s.Name,
			Version: "1.0.0",
			Description: strings.TrimSpace(s.Title+". "+s.Description) + "\n\n" +
				"The events " + s.Name + " publishes and consumes, generated from the event types it registers with its bus " +
				"(internal/contracts). Every service publishes to the durable fanout exchange " + eventbus.Exchange +
				", so every queue bound to it receives every event; each service consumes its own durable queue, named after " +
				"the service, and handles the event types listed under its queue channel (others are acknowledged unread).",
			Contact: contact,
			License: license,
		},
		Servers: map[string]asyncServer{
			"rabbitmq": {
				URL:             "{host}:{port}",
				Protocol:        "amqp",
				ProtocolVersion: "0.9.1",
				Description:     "the shared RabbitMQ broker, virtual host " + VHost,
				Variables: map[string]asyncVariable{
					"host": {Default: "127.0.0.1", Description: "broker host"},
					"port": {Default: "5672", Description: "AMQP port"},
				},
			},
		},
		DefaultContentType: "application/json",
		Channels:           map[string]asyncChannel{},
		Components:         asyncComponents{Messages: map[string]asyncMessage{}, Schemas: map[string]any{}},
	}

	r := jsonschema.Reflector{}
	configure(&r)
	defs := map[string]jsonschema.Schema{}
	entity := map[reflect.Type]jsonschema.Schema{}
	for _, e := range append(append([]eventbus.EventInfo{}, published...), consumed...) {
		if _, ok := entity[e.Entity]; ok {
			continue
		}
		sch, err := r.Reflect(reflect.New(e.Entity).Elem().Interface(),
			jsonschema.DefinitionsPrefix(schemasPrefix),
			jsonschema.CollectDefinitions(func(name string, sch jsonschema.Schema) { defs[name] = sch }),
			jsonschema.RootRef,
		)
		if err != nil {
			return nil, fmt.Errorf("%s: entity schema: %w", e.Type(), err)
		}
		entity[e.Entity] = sch
	}
	genDefs := map[string]any{}
	if err := roundTrip(defs, &genDefs); err != nil {
		return nil, err
	}
	doc.Components.Schemas = genDefs
	ex := exampler{defs: genDefs, baseURL: "http://127.0.0.1:8080/" + s.Dir + "/v1"}

	var pubRefs, conRefs []ref
	for _, e := range published {
		m, err := message(e, entity[e.Entity], ex)
		if err != nil {
			return nil, err
		}
		doc.Components.Messages[e.Type()] = m
		pubRefs = append(pubRefs, ref{Ref: "#/components/messages/" + e.Type()})
	}
	for _, e := range consumed {
		m, err := message(e, entity[e.Entity], ex)
		if err != nil {
			return nil, err
		}
		doc.Components.Messages[e.Type()] = m
		conRefs = append(conRefs, ref{Ref: "#/components/messages/" + e.Type()})
	}

	exchange := asyncChannel{
		Description: "The durable fanout exchange every service publishes its integration events to; it copies each event " +
			"to every queue bound to it. Routing keys are not used.",
		Servers: []string{"rabbitmq"},
		Bindings: amqpBindings{AMQP: amqpChannelBinding{
			Is:             "routingKey",
			Exchange:       &amqpExchange{Name: eventbus.Exchange, Type: "fanout", Durable: true, AutoDelete: false, VHost: VHost},
			BindingVersion: AMQPBindingVersion,
		}},
	}
	if len(pubRefs) > 0 {
		t, f := true, false
		exchange.Subscribe = &asyncOperation{
			OperationID: lowerCamel(s.Name) + "Events",
			Summary:     "Events " + s.Name + " publishes",
			Description: "AsyncAPI 2.x semantics: what a client may receive. " + s.Name + " publishes these events to " +
				eventbus.Exchange + " through its transactional outbox, with publisher confirms; a consumer binds its own queue to the exchange.",
			Bindings: amqpBindings{AMQP: amqpOperationBinding{DeliveryMode: 2, Mandatory: &f, Timestamp: &t, BindingVersion: AMQPBindingVersion}},
			Message:  oneOfRefs{OneOf: pubRefs},
		}
	}
	doc.Channels[eventbus.Exchange] = exchange

	queue := asyncChannel{
		Description: "The durable queue of " + s.Name + ", bound to " + eventbus.Exchange + ". Failed deliveries are retried " +
			"through the service's own exchange " + s.Name + ".retry and delay queues " + s.Name + ".retry.<ms>, then " +
			"dead-lettered to " + s.Name + ".dead-letter.",
		Servers: []string{"rabbitmq"},
		Bindings: amqpBindings{AMQP: amqpChannelBinding{
			Is:             "queue",
			Queue:          &amqpQueue{Name: s.Name, Durable: true, Exclusive: false, AutoDelete: false, VHost: VHost},
			BindingVersion: AMQPBindingVersion,
		}},
	}
	if len(conRefs) > 0 {
		t := true
		queue.Publish = &asyncOperation{
			OperationID: lowerCamel(s.Name) + "Handles",
			Summary:     "Events " + s.Name + " consumes",
			Description: "AsyncAPI 2.x semantics: what the application receives. Each event is handled at least once, " +
				"idempotently (an inbox records handled uuids); events of other types reach the queue and are acknowledged unread.",
			Bindings: amqpBindings{AMQP: amqpOperationBinding{Ack: &t, BindingVersion: AMQPBindingVersion}},
			Message:  oneOfRefs{OneOf: conRefs},
		}
	}
	doc.Channels[s.Name] = queue

	tags := map[string]bool{}
	for _, m := range doc.Components.Messages {
		tags[m.Publisher] = true
	}
	names := make([]string, 0, len(tags))
	for t := range tags {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		doc.Tags = append(doc.Tags, asyncTag{Name: t, Description: "events published by " + t})
	}
	return json.MarshalIndent(doc, "", "  ")
}

// message builds the message of event e whose entity schema is entity.
func message(e eventbus.EventInfo, entity jsonschema.Schema, ex exampler) (asyncMessage, error) {
	var entityGeneric any
	if err := roundTrip(entity, &entityGeneric); err != nil {
		return asyncMessage{}, err
	}
	payload := map[string]any{
		"type":     "object",
		"required": []string{"uuid", "fired_at", e.EntityKey},
		"properties": map[string]any{
			"uuid": map[string]any{
				"type": "string", "format": "uuid",
				"description": "the event's unique id; also the message_id property",
			},
			"fired_at": map[string]any{
				"type": "string", "format": "date-time", "pattern": FiredAtPattern,
				"description": "when the event happened: UTC, YYYY-MM-DDTHH:mm:ss.sssZ",
			},
			e.EntityKey: entityGeneric,
		},
	}
	headers := map[string]any{
		"type":     "object",
		"required": []string{eventbus.HeaderCorrelationID, eventbus.HeaderTraceparent},
		"properties": map[string]any{
			eventbus.HeaderCorrelationID: map[string]any{
				"type":        "string",
				"description": "the id shared by every event of one business flow: the id of the HTTP request that started it (X-Request-Id), or the uuid of the first event",
			},
			eventbus.HeaderCausationID: map[string]any{
				"type":        "string",
				"format":      "uuid",
				"description": "the uuid of the event whose handling caused this one; absent when an API request caused it",
			},
			eventbus.HeaderTraceparent: map[string]any{
				"type":        "string",
				"pattern":     TraceparentPattern,
				"description": "W3C trace context of the span that published the event",
			},
			eventbus.HeaderActorSubject: map[string]any{
				"type":        "string",
				"description": "who acted: the subject of the access token of the API request that started the flow (an account id, or a machine client's id); carried on by the events its handling causes; absent when no authenticated request started it",
			},
			eventbus.HeaderActorRole: map[string]any{
				"type":        "string",
				"enum":        []string{"customer", "staff", "operator"},
				"description": "the role the actor acted in (their token's role, staff or operator before customer); absent with actor_subject, or for a token without a platform role",
			},
		},
	}
	example := map[string]any{
		"uuid":      "1b4e28ba-2fa1-4d2e-8c1f-3c5a1f5e9d10",
		"fired_at":  exampleTime,
		e.EntityKey: ex.example(entityGeneric, e.EntityKey, 0),
	}
	return asyncMessage{
		MessageID: e.Type(),
		Name:      e.Type(),
		Title:     strings.ReplaceAll(e.Name, "_", " "),
		Summary:   e.Service + " published " + e.Name + " (the " + e.EntityKey + " in its REST shape, with _links)",
		Description: "Published by " + e.Service + " to " + eventbus.Exchange + ". Payload: uuid, fired_at and the " +
			e.EntityKey + " under \"" + e.EntityKey + "\", in the same shape as the REST model of the resource.",
		ContentType:   "application/json",
		CorrelationID: correlationID{Description: "the business flow this event belongs to", Location: "$message.header#/" + eventbus.HeaderCorrelationID},
		Headers:       headers,
		Payload:       payload,
		Tags:          []asyncTag{{Name: e.Service}},
		Bindings:      amqpBindings{AMQP: amqpMessageBinding{MessageType: e.Type(), BindingVersion: AMQPBindingVersion}},
		Examples: []messageExample{{
			Name:    e.Name,
			Summary: "an example " + e.Name + " event",
			Headers: map[string]any{
				eventbus.HeaderCorrelationID: "5f0c2b9e-8a7d-4c1e-9b3a-2d6f4e8a1c07",
				eventbus.HeaderTraceparent:   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			},
			Payload: example,
		}},
		AMQPProperties: map[string]any{
			"message_id":     "the payload's uuid",
			"type":           e.Type(),
			"app_id":         e.Service,
			"content_type":   "application/json",
			"delivery_mode":  2,
			"timestamp":      "fired_at, in seconds",
			"correlation_id": "the correlation_id header",
		},
		EntityKey: e.EntityKey,
		Publisher: e.Service,
	}, nil
}

// roundTrip converts v to generic JSON values in dst.
func roundTrip(v any, dst any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}

// lowerCamel turns sales.orders into salesOrders.
func lowerCamel(name string) string {
	c := camel(strings.ReplaceAll(name, ".", "-"))
	if c == "" {
		return c
	}
	return strings.ToLower(c[:1]) + c[1:]
}
