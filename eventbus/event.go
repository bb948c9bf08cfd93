package eventbus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"time"

	"github.com/google/uuid"
)

// FiredAtLayout is the guideline's fired_at format, YYYY-MM-DDTHH:mm:ss.sssZ:
// UTC with exactly three fractional digits.
const FiredAtLayout = "2006-01-02T15:04:05.000Z"

// FormatFiredAt formats t as the guideline's fired_at value.
func FormatFiredAt(t time.Time) string { return t.UTC().Format(FiredAtLayout) }

var (
	entityKeyRE = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	firedAtRE   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
)

// Header names carried by every event message in the AMQP headers table.
const (
	HeaderCorrelationID = "correlation_id" // the id shared by every event of one business flow
	HeaderCausationID   = "causation_id"   // the uuid of the event that caused this one
	HeaderTraceparent   = "traceparent"    // W3C trace context
	HeaderActorSubject  = "actor_subject"  // who acted: the subject (sub) of the access token of the request that caused the event
	HeaderActorRole     = "actor_role"     // the role they acted in: customer, staff or operator ("" for a token without one)

	// Headers the bus adds when it retries or dead-letters a message.
	HeaderAttempt       = "x-attempt"              // delivery attempts so far (set on retries)
	HeaderLastError     = "x-last-error"           // the error of the last failed attempt
	HeaderDeadReason    = "x-dead-letter-reason"   // why the message was dead-lettered
	HeaderDeadAt        = "x-dead-lettered-at"     // when (fired_at format)
	HeaderOrigExchange  = "x-original-exchange"    // exchange of the first delivery
	HeaderOrigRouting   = "x-original-routing-key" // routing key of the first delivery
	HeaderOrigMessageID = "x-original-message-id"  // message_id property as received
	HeaderOrigType      = "x-original-type"        // type property as received
	HeaderOrigAppID     = "x-original-app-id"      // app_id property as received
)

// EventInfo describes an event type without its Go type parameter: what the
// contracts generator and the registration checks need.
type EventInfo struct {
	Service   string       // publishing service, domain-name.subdomain-name
	Name      string       // event name, lower_snake_case past tense
	EntityKey string       // the payload field holding the entity
	Entity    reflect.Type // Go type of the entity
}

// Type returns the AMQP type property: domain-name.subdomain-name.event_name.
func (i EventInfo) Type() string { return i.Service + "." + i.Name }

// EventInfoer is implemented by every EventType.
type EventInfoer interface{ Info() EventInfo }

// EventType is one integration event of one publishing service, carrying an
// entity of Go type T under the payload key EntityKey. Values are immutable
// and safe for concurrent use. Create them with NewEventType or MustEventType.
type EventType[T any] struct {
	info EventInfo
}

// NewEventType validates the publishing service name, the event name and the
// entity key, and returns the event type. The errors say which rule is broken.
func NewEventType[T any](service, name, entityKey string) (EventType[T], error) {
	if err := ValidateServiceName(service); err != nil {
		return EventType[T]{}, err
	}
	if err := ValidateEventName(name); err != nil {
		return EventType[T]{}, err
	}
	if !entityKeyRE.MatchString(entityKey) || entityKey == "uuid" || entityKey == "fired_at" {
		return EventType[T]{}, fmt.Errorf("event %s.%s: entity key %q must be a lower_snake_case noun naming the entity (e.g. order), not uuid or fired_at", service, name, entityKey)
	}
	return EventType[T]{info: EventInfo{Service: service, Name: name, EntityKey: entityKey, Entity: reflect.TypeFor[T]()}}, nil
}

// MustEventType is NewEventType for package-level variables of an events
// package: it panics on an invalid name, at program start, like
// regexp.MustCompile.
func MustEventType[T any](service, name, entityKey string) EventType[T] {
	et, err := NewEventType[T](service, name, entityKey)
	if err != nil {
		panic("eventbus: " + err.Error())
	}
	return et
}

// Type returns the AMQP type property, e.g. sales.orders.order_placed.
func (e EventType[T]) Type() string { return e.info.Type() }

// Info describes the event type.
func (e EventType[T]) Info() EventInfo { return e.info }

// New builds the message for one occurrence of the event: a new uuid, fired_at
// now, the entity encoded as JSON under the entity key, and the correlation id,
// causation id and traceparent taken from ctx (see WithCorrelationID; inside a
// handler, ctx carries the event being handled). It fails only if the entity
// cannot be encoded as a JSON object.
func (e EventType[T]) New(ctx context.Context, entity T) (Message, error) {
	if e.info.Service == "" {
		return Message{}, errors.New("eventbus: EventType used without NewEventType")
	}
	ent, err := json.Marshal(entity)
	if err != nil {
		return Message{}, fmt.Errorf("eventbus: encode %s entity: %w", e.Type(), err)
	}
	if len(ent) == 0 || ent[0] != '{' {
		return Message{}, fmt.Errorf("eventbus: %s entity must encode as a JSON object, got %.20s", e.Type(), ent)
	}
	id := uuid.NewString()
	firedAt := time.Now().UTC().Truncate(time.Millisecond)
	var body bytes.Buffer
	body.Grow(len(ent) + 96)
	body.WriteString(`{"uuid":"`)
	body.WriteString(id)
	body.WriteString(`","fired_at":"`)
	body.WriteString(FormatFiredAt(firedAt))
	body.WriteString(`","`)
	body.WriteString(e.info.EntityKey)
	body.WriteString(`":`)
	body.Write(ent)
	body.WriteByte('}')
	return Message{
		ID:      id,
		Type:    e.Type(),
		AppID:   e.info.Service,
		FiredAt: firedAt,
		Body:    body.Bytes(),
		Headers: outgoingHeaders(ctx, id),
	}, nil
}

// Message is one encoded integration event, ready for the outbox or for
// Bus.Publish. Body is the JSON payload; Headers travel as AMQP headers.
type Message struct {
	ID      string            // event uuid; the message_id property
	Type    string            // domain.subdomain.event_name; the type property
	AppID   string            // publishing service; the app_id property
	FiredAt time.Time         // the payload's fired_at; also the timestamp property
	Body    []byte            // {"uuid":…,"fired_at":…,"<entity>":{…}}
	Headers map[string]string // correlation_id, causation_id, traceparent
}

// Event is a received integration event, decoded and validated.
type Event[T any] struct {
	UUID          string
	FiredAt       time.Time
	Type          string // domain.subdomain.event_name
	AppID         string // the publishing service
	Entity        T
	CorrelationID string
	CausationID   string
	Traceparent   string
	Attempt       int // 1 on the first delivery, incremented by each retry
}

// envelope is the validated, service-independent part of a received payload.
// A handler's typed decoder (typedDecoder) fills value with the decoded
// entity (a *T) and leaves entity nil; decodeEnvelope keeps the entity raw.
type envelope struct {
	uuid    string
	firedAt time.Time
	entity  json.RawMessage
	value   any
}

// MalformedError reports a message that breaks the event rules; the bus
// dead-letters such messages at once, with Reason as the reason.
type MalformedError struct{ Reason string }

func (e *MalformedError) Error() string { return "malformed event: " + e.Reason }

func malformed(format string, args ...any) error {
	return &MalformedError{Reason: fmt.Sprintf(format, args...)}
}

// checkEnvelope checks a payload's uuid and fired_at, as raw JSON values
// (nil when absent).
func checkEnvelope(rawID, rawFired json.RawMessage, messageID string) (envelope, error) {
	var env envelope
	if rawID == nil {
		return envelope{}, malformed("payload has no uuid")
	}
	if err := json.Unmarshal(rawID, &env.uuid); err != nil {
		return envelope{}, malformed("payload uuid is not a string")
	}
	if _, err := uuid.Parse(env.uuid); err != nil || len(env.uuid) != 36 {
		return envelope{}, malformed("payload uuid %q is not a UUID", env.uuid)
	}
	if messageID != env.uuid {
		return envelope{}, malformed("message_id %q differs from payload uuid %q", messageID, env.uuid)
	}
	if rawFired == nil {
		return envelope{}, malformed("payload has no fired_at")
	}
	var fired string
	if err := json.Unmarshal(rawFired, &fired); err != nil {
		return envelope{}, malformed("payload fired_at is not a string")
	}
	if !firedAtRE.MatchString(fired) {
		return envelope{}, malformed("fired_at %q is not YYYY-MM-DDTHH:mm:ss.sssZ", fired)
	}
	t, err := time.Parse(FiredAtLayout, fired)
	if err != nil {
		return envelope{}, malformed("fired_at %q: %v", fired, err)
	}
	env.firedAt = t
	return env, nil
}

// typedDecoder returns the decoder of payloads whose entity, under
// entityKey, is a T. It reads the payload in one json.Unmarshal into a struct
// made for the key (uuid, fired_at and a *T), instead of a map of raw values
// and then the entity again: decoding events was the largest single cost of
// the services that handle them. The rules: a JSON object with a uuid equal
// to messageID, a fired_at in FiredAtLayout and an object under entityKey
// that decodes into a T; each broken rule has its own reason. As everywhere in encoding/json, keys match without
// regard to case: a "UUID" key is read as the uuid (publishers through this
// package always write the lower-case names).
func typedDecoder[T any](entityKey string) func(body []byte, messageID string) (envelope, error) {
	rawType := reflect.TypeFor[json.RawMessage]()
	st := reflect.StructOf([]reflect.StructField{
		{Name: "UUID", Type: rawType, Tag: `json:"uuid"`},
		{Name: "FiredAt", Type: rawType, Tag: `json:"fired_at"`},
		{Name: "Entity", Type: reflect.TypeFor[*T](), Tag: reflect.StructTag(`json:"` + entityKey + `"`)},
	})
	return func(body []byte, messageID string) (envelope, error) {
		v := reflect.New(st)
		err := json.Unmarshal(body, v.Interface())
		var entityErr error
		if err != nil {
			var te *json.UnmarshalTypeError
			switch {
			case !errors.As(err, &te) || te.Field == "":
				return envelope{}, malformed("payload is not a JSON object: %v", err)
			case te.Field == entityKey:
				entityErr = malformed("payload has no %q object", entityKey)
			default: // a field of the entity: encoding/json decoded the rest
				var zero T
				entityErr = malformed("entity does not decode into %T: %v", zero, err)
			}
		}
		f := v.Elem()
		env, cerr := checkEnvelope(f.Field(0).Interface().(json.RawMessage), f.Field(1).Interface().(json.RawMessage), messageID)
		if cerr != nil {
			return envelope{}, cerr
		}
		if entityErr != nil {
			return envelope{}, entityErr
		}
		ent := f.Field(2).Interface().(*T)
		if ent == nil {
			return envelope{}, malformed("payload has no %q object", entityKey)
		}
		env.value = ent
		return env, nil
	}
}
