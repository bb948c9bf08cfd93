package eventbus

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"
)

// HeaderRetries counts how many times an operator sent a dead-lettered
// message back to its service (Redeliver sets it). A message dead-lettered
// again keeps it, so the n-th dead-lettering of one event carries n-1: with
// the message id it identifies one dead-lettering, and a keeper of dead
// letters that sees the same pair twice has seen a redelivery.
const HeaderRetries = "x-failed-message-retries"

// DeadLetter is one message read from the service's dead-letter queue, with
// what the bus (or, for a quorum queue's delivery limit, the broker) wrote
// about its failure.
type DeadLetter struct {
	MessageID     string    // the message_id property (the event's uuid when well formed)
	Type          string    // the type property
	AppID         string    // the app_id property: the publisher
	ContentType   string    // the content_type property
	CorrelationID string    // the correlation_id header (or property)
	Traceparent   string    // the traceparent header
	Timestamp     time.Time // the timestamp property (zero when absent)
	// Headers are every AMQP header, as JSON-friendly values (tables as
	// maps, byte strings as text or base64, times as RFC 3339).
	Headers map[string]any
	Body    []byte
	// Reason is the x-dead-letter-reason header, or for a message the
	// broker dead-lettered (delivery limit) a sentence built from x-death.
	Reason string
	// Attempts is how many times the handler ran before this dead-lettering.
	Attempts int
	// DeadAt is when it was dead-lettered (x-dead-lettered-at), or when it
	// was read if the header is absent; DeadAtRaw is the header as sent ("").
	DeadAt    time.Time
	DeadAtRaw string
	// Retries is HeaderRetries: how many times an operator had sent the
	// message back before this dead-lettering (0 for the first one).
	Retries int
	// Malformed says why the message breaks the event rules (ValidateMessage),
	// "" for a well-formed event. A malformed message cannot be retried.
	Malformed string
}

// ConsumeDeadLetters reads the service's dead-letter queue (<service>.dead-letter)
// on a connection of its own, until ctx is done, and calls fn for each
// message, one at a time, in queue order. A message is acked only after fn
// returns nil; when fn fails it is returned to the queue and ConsumeDeadLetters
// waits a second before the next (fn's store is likely down), so nothing read
// is ever lost, and fn may see a message again (after a crash between its
// commit and the ack): fn must be idempotent (see DeadLetter.Retries).
//
// It declares the service's topology like Run (idempotent), reconnects with
// backoff when the connection is lost, and returns nil when ctx is done.
func (b *Bus) ConsumeDeadLetters(ctx context.Context, fn func(ctx context.Context, dl DeadLetter) error) error {
	backoff := b.cfg.ReconnectMin
	for {
		start := time.Now()
		err := b.deadLetterSession(ctx, fn)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > 30*time.Second {
			backoff = b.cfg.ReconnectMin
		}
		b.log.Warn("dead-letter consumer: connection lost; reconnecting", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, b.cfg.ReconnectMax)
	}
}

func (b *Bus) deadLetterSession(ctx context.Context, fn func(context.Context, DeadLetter) error) error {
	conn, err := amqp.DialConfig(b.cfg.URL, amqp.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Dial:       amqp.DefaultDial(10 * time.Second),
		Properties: amqp.Table{"connection_name": b.cfg.Service + " dead letters"},
	})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	if err := b.declareTopology(conn); err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open dead-letter channel: %w", err)
	}
	if err := ch.Qos(32, 0, false); err != nil {
		return fmt.Errorf("set prefetch: %w", err)
	}
	q := b.cfg.deadLetterQueue()
	deliveries, err := ch.Consume(q, fmt.Sprintf("%s-dead-letters-%d", b.cfg.Service, time.Now().UnixNano()), false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", q, err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-closed:
			return fmt.Errorf("connection closed: %v", e)
		case d, ok := <-deliveries:
			if !ok {
				return errors.New("dead-letter delivery stream ended")
			}
			dl := ReadDeadLetter(d.MessageId, d.Type, d.AppId, d.ContentType, d.CorrelationId, d.Timestamp, d.Headers, d.Body, time.Now())
			if err := fn(context.WithoutCancel(ctx), dl); err != nil {
				b.log.Warn("dead-letter consumer: message not kept; returned to the queue", "message_id", d.MessageId, "error", err)
				_ = d.Nack(false, true)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(time.Second):
				}
				continue
			}
			if err := d.Ack(false); err != nil {
				return fmt.Errorf("ack dead letter: %w", err)
			}
		}
	}
}

// ReadDeadLetter builds a DeadLetter from a message's properties, headers and
// body as the dead-letter queue delivers them; now stands for DeadAt when
// the message carries no x-dead-lettered-at. Exported for tests and tools
// that read dead-letter queues themselves.
func ReadDeadLetter(messageID, typ, appID, contentType, correlationID string, timestamp time.Time, headers amqp.Table, body []byte, now time.Time) DeadLetter {
	dl := DeadLetter{
		MessageID: messageID, Type: typ, AppID: appID, ContentType: contentType,
		CorrelationID: headerString(headers, HeaderCorrelationID),
		Traceparent:   headerString(headers, HeaderTraceparent),
		Timestamp:     timestamp,
		Headers:       plainTable(headers),
		Body:          body,
		Reason:        headerString(headers, HeaderDeadReason),
		Attempts:      headerInt(headers, HeaderAttempt, 0),
		DeadAtRaw:     headerString(headers, HeaderDeadAt),
		Retries:       headerInt(headers, HeaderRetries, 0),
	}
	if dl.CorrelationID == "" {
		dl.CorrelationID = correlationID
	}
	if t, err := time.Parse(FiredAtLayout, dl.DeadAtRaw); err == nil {
		dl.DeadAt = t
	} else {
		dl.DeadAt = now.UTC().Truncate(time.Millisecond)
	}
	if dl.Reason == "" {
		dl.Reason, dl.Attempts = brokerDeath(headers, dl.Attempts)
	}
	if dl.Attempts < 1 {
		dl.Attempts = 1
	}
	if err := ValidateMessage(contentType, messageID, appID, typ, body); err != nil {
		var mal *MalformedError
		if errors.As(err, &mal) {
			dl.Malformed = mal.Reason
		} else {
			dl.Malformed = err.Error()
		}
	}
	return dl
}

// brokerDeath describes a message the broker dead-lettered itself (a quorum
// queue's delivery limit): its x-death reason and its delivery count.
func brokerDeath(h amqp.Table, attempts int) (string, int) {
	deaths, _ := h["x-death"].([]any)
	if len(deaths) == 0 {
		return "dead-lettered without a reason (no x-dead-letter-reason header)", attempts
	}
	d, _ := deaths[0].(amqp.Table)
	reason, _ := d["reason"].(string)
	queue, _ := d["queue"].(string)
	if n := headerInt(h, "x-delivery-count", 0); n > attempts {
		attempts = n
	}
	return fmt.Sprintf("the broker dead-lettered it from %s: %s (the handler crashed the process on every delivery?)", queue, reason), attempts
}

// ValidateMessage checks a message against the event rules the bus applies
// before any handler runs: content_type application/json, a message_id, an
// app_id that publishes the type, a JSON object payload whose uuid is a UUID
// equal to the message_id and whose fired_at has the guideline's format. It
// returns a *MalformedError saying which rule is broken, or nil. (Whether the
// entity decodes depends on the handler; that failure is not malformed here:
// a message whose entity was wrong can be corrected and retried.)
func ValidateMessage(contentType, messageID, appID, typ string, body []byte) error {
	if err := (*Bus)(nil).validateDelivery(&amqp.Delivery{ContentType: contentType, MessageId: messageID, AppId: appID, Type: typ}); err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return malformed("payload is not a JSON object: %v", err)
	}
	_, err := checkEnvelope(m["uuid"], m["fired_at"], messageID)
	return err
}

// Redelivery is a dead-lettered message sent back to its service's own
// queue by Redeliver: the original properties and body, unchanged, so the
// inbox recognises its uuid.
type Redelivery struct {
	MessageID, Type, AppID, ContentType, CorrelationID string
	Timestamp                                          time.Time
	// Headers are the message's own headers (correlation_id, causation_id,
	// traceparent …); headers starting with "x-" (what the bus added on
	// retries and dead-lettering) are dropped, so the handler sees a first
	// attempt.
	Headers map[string]any
	Body    []byte
	// Retries is the value of HeaderRetries on the copy: the number of this
	// operator retry (1 for the first).
	Retries int
}

// Redeliver publishes each message to the service's own queue only (through
// its retry exchange <service>.retry with the queue's routing key: no other
// service sees it), persistent, and waits for the broker's confirms. It
// returns one error per message, nil for a confirmed one; an error wraps
// ErrNotConnected or ErrNotConfirmed, and the message may be sent again.
// The handler then runs as for a first delivery (attempt 1). Safe for
// concurrent use; the bus must be running (Run).
func (b *Bus) Redeliver(ctx context.Context, msgs ...Redelivery) []error {
	pubs := make([]amqp.Publishing, len(msgs))
	keys := make([]string, len(msgs))
	for i, m := range msgs {
		h := amqp.Table{}
		for k, v := range m.Headers {
			if strings.HasPrefix(strings.ToLower(k), "x-") {
				continue
			}
			if s, ok := v.(string); ok {
				h[k] = s
			} else if v != nil {
				h[k] = fmt.Sprint(v)
			}
		}
		h[HeaderRetries] = int64(m.Retries)
		pubs[i] = amqp.Publishing{
			Headers: h, ContentType: m.ContentType, DeliveryMode: amqp.Persistent,
			MessageId: m.MessageID, Type: m.Type, AppId: m.AppID, Timestamp: m.Timestamp,
			CorrelationId: m.CorrelationID, Body: m.Body,
		}
		keys[i] = b.cfg.Service
	}
	return b.publishRaw(ctx, b.cfg.retryExchange(), keys, pubs)
}

// plainTable converts AMQP header values to JSON-friendly ones.
func plainTable(t amqp.Table) map[string]any {
	out := make(map[string]any, len(t))
	for k, v := range t {
		out[k] = plainValue(v)
	}
	return out
}

func plainValue(v any) any {
	switch x := v.(type) {
	case amqp.Table:
		return plainTable(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = plainValue(x[i])
		}
		return out
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return "base64:" + base64.StdEncoding.EncodeToString(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case amqp.Decimal:
		return strconv.FormatInt(int64(x.Value), 10) + "e-" + strconv.Itoa(int(x.Scale))
	default:
		return v
	}
}
