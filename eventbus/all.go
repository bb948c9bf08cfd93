package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/jmoiron/sqlx"
	amqp "github.com/rabbitmq/amqp091-go"
)

// RawEvent is a received integration event of any type, validated like every
// event (properties, uuid, fired_at) but with its entity left as raw JSON:
// what a catch-all handler (HandleAll) receives.
type RawEvent struct {
	UUID          string
	FiredAt       time.Time
	Type          string // domain.subdomain.event_name
	AppID         string // the publishing service
	CorrelationID string
	CausationID   string
	Traceparent   string
	// Headers are the message's headers whose values are strings
	// (correlation_id, causation_id, traceparent, and any other a publisher
	// added, such as actor).
	Headers map[string]string
	// Payload is the whole message body: {"uuid", "fired_at", "<entity>": {…}}.
	Payload json.RawMessage
	// EntityKey and Entity are the payload's one member besides uuid and
	// fired_at, when it has exactly one and it is a JSON object; otherwise
	// both are empty.
	EntityKey string
	Entity    json.RawMessage
	Attempt   int // 1 on the first delivery, incremented by each retry
}

// HandleAll registers h for every event type that has no handler of its own
// (Handle, HandleTx) and that the service does not publish itself: a
// catch-all consumer, for the platform's own services that observe the whole
// choreography (ops.journeys). h runs at most once per event uuid, inside a
// database transaction on db that also records the uuid in eventbus_inbox,
// exactly as for HandleTx; the outcomes (ack after commit, retries,
// dead-lettering, database outages) are those of HandleTx. Properties and the
// envelope (uuid, fired_at) are validated as for every event, and so is the
// entity of the known types: for those, a payload without the type's entity
// key, or whose entity does not decode into the type's Go type, is
// dead-lettered at once, with the reason a typed handler would give. Events of
// other types are accepted with any entity. Consumed lists the known types.
//
// The service's own events (the types it Publishes) are not handed to h: a
// service knows what it published. They stay on the fast path below.
//
// A bus without HandleAll keeps its fast path: deliveries of types it has no
// handler for are acked unread, in batches. With HandleAll, every other
// delivery is read and handled. Register before Run; HandleAll may be called
// once.
func HandleAll(b *Bus, db *sqlx.DB, h func(ctx context.Context, tx *sqlx.Tx, ev RawEvent) error, known ...EventInfoer) error {
	if db == nil {
		return errors.New("eventbus: HandleAll needs a database")
	}
	if h == nil {
		return errors.New("eventbus: HandleAll needs a handler")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return errors.New("eventbus: HandleAll registered after Run")
	}
	if b.all != nil {
		return errors.New("eventbus: HandleAll already registered")
	}
	types := map[string]EventInfo{}
	for _, k := range known {
		info := k.Info()
		if info.Service == "" || info.Entity == nil {
			return errors.New("eventbus: HandleAll: a known type not made by NewEventType")
		}
		types[info.Type()] = info
	}
	b.allTypes = types
	b.all = &handler{
		info:   EventInfo{Service: b.cfg.Service, Name: "*"},
		decode: rawDecoder,
		check:  func(typ string, env envelope) error { return checkKnown(types[typ], env) },
		fn: func(ctx context.Context, in incoming) error {
			ev := rawEventOf(in)
			tev := Event[RawEvent]{UUID: ev.UUID, Type: ev.Type, Entity: ev}
			run := func(ctx context.Context, tx *sqlx.Tx, e Event[RawEvent]) error { return h(ctx, tx, e.Entity) }
			for try := 1; ; try++ {
				dup, fast, err := handleOnce(ctx, db, tev, run)
				if err == nil {
					if dup {
						b.stats.duplicates.Add(1)
						return errDuplicate // success, counted as a duplicate
					}
					if !fast {
						b.notifyCommitted()
					}
					return nil
				}
				if try < 4 && isTransientDBError(err) {
					time.Sleep(time.Duration(try*try) * 10 * time.Millisecond)
					continue
				}
				if !isFinal(err) && !reachable(ctx, db) {
					return &unavailableError{err}
				}
				return err
			}
		},
	}
	return nil
}

// catchAll returns the catch-all handler for deliveries of type typ that
// have no handler of their own: nil without HandleAll, and for the service's
// own event types. It is called only after Run started (the maps no longer
// change).
func (b *Bus) catchAll(typ string) *handler {
	if b.all == nil {
		return nil
	}
	if _, own := b.published[typ]; own {
		return nil
	}
	if h, ok := b.allByType[typ]; ok {
		return h // with the type's observer (resolveObservers)
	}
	return b.all
}

// checkKnown checks the entity of a payload of a known type (info is the
// zero EventInfo for an unknown type, which passes).
func checkKnown(info EventInfo, env envelope) error {
	if info.Entity == nil {
		return nil
	}
	e, _ := env.value.(rawEntity)
	if e.key != info.EntityKey {
		return malformed("payload has no %q object", info.EntityKey)
	}
	v := reflect.New(info.Entity)
	if err := json.Unmarshal(e.raw, v.Interface()); err != nil {
		return malformed("entity does not decode into %s: %v", info.Entity, err)
	}
	return nil
}

// HandlesAll reports whether a catch-all handler is registered (HandleAll).
func (b *Bus) HandlesAll() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.all != nil
}

// rawDecoder validates a payload of any type: a JSON object with a uuid equal
// to messageID and a fired_at in FiredAtLayout; the entity is kept raw when
// the payload has exactly one other member and it is an object.
func rawDecoder(body []byte, messageID string) (envelope, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return envelope{}, malformed("payload is not a JSON object")
	}
	env, err := checkEnvelope(m["uuid"], m["fired_at"], messageID)
	if err != nil {
		return envelope{}, err
	}
	var key string
	for k, v := range m {
		if k == "uuid" || k == "fired_at" {
			continue
		}
		if key != "" || len(v) == 0 || v[0] != '{' {
			key = ""
			break
		}
		key = k
	}
	env.value = rawEntity{key: key, raw: m[key]}
	return env, nil
}

// rawEntity is the envelope value rawDecoder leaves for rawEventOf.
type rawEntity struct {
	key string
	raw json.RawMessage
}

func rawEventOf(in incoming) RawEvent {
	ev := RawEvent{
		UUID:          in.env.uuid,
		FiredAt:       in.env.firedAt,
		Type:          in.d.Type,
		AppID:         in.d.AppId,
		CorrelationID: headerString(in.d.Headers, HeaderCorrelationID),
		CausationID:   headerString(in.d.Headers, HeaderCausationID),
		Traceparent:   headerString(in.d.Headers, HeaderTraceparent),
		Headers:       stringHeaders(in.d.Headers),
		Payload:       json.RawMessage(in.d.Body),
		Attempt:       in.attempt,
	}
	if e, ok := in.env.value.(rawEntity); ok && e.key != "" {
		ev.EntityKey, ev.Entity = e.key, e.raw
	}
	return ev
}

func stringHeaders(h amqp.Table) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		switch s := v.(type) {
		case string:
			out[k] = s
		case []byte:
			out[k] = string(s)
		default:
			if k == HeaderAttempt {
				out[k] = fmt.Sprint(v)
			}
		}
	}
	return out
}
