package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// handler is one registered event handler, type-erased.
type handler struct {
	info   EventInfo
	obs    TypeObserver                                          // set by Run when Config.Observer is set
	decode func(body []byte, messageID string) (envelope, error) // typedDecoder of the handler's entity type
	check  func(typ string, env envelope) error                  // further checks of a decoded payload (HandleAll's known types); nil for none
	fn     func(ctx context.Context, in incoming) error
}

// incoming is a validated delivery on its way to a handler.
type incoming struct {
	env     envelope
	d       *amqp.Delivery
	attempt int
}

// PermanentError marks a handler error that retrying cannot fix; the bus
// dead-letters the message at once instead of retrying it.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that the bus dead-letters the message without
// retrying it. Use it for events that can never be handled (for example a
// reference to something that cannot exist).
func Permanent(err error) error { return &PermanentError{Err: err} }

// Handle registers h for events of type et. h runs once per delivery,
// possibly more than once for the same event (at-least-once delivery): use
// HandleTx for handlers that change state. A nil return acks the message; an
// error retries it after Config.RetryDelays, up to Config.MaxAttempts, then
// dead-letters it; an error wrapped with Permanent, an entity that does not
// decode into T, and a panic in h dead-letter it at once (a panic is
// retried like an error). Register before Run; a second handler for the same
// type is refused.
func Handle[T any](b *Bus, et EventType[T], h func(ctx context.Context, ev Event[T]) error) error {
	return b.register(et.Info(), typedDecoder[T](et.Info().EntityKey), func(ctx context.Context, in incoming) error {
		ev, err := decodeEvent[T](in)
		if err != nil {
			return err
		}
		return h(ctx, ev)
	})
}

func decodeEvent[T any](in incoming) (Event[T], error) {
	ev := Event[T]{
		UUID:          in.env.uuid,
		FiredAt:       in.env.firedAt,
		Type:          in.d.Type,
		AppID:         in.d.AppId,
		CorrelationID: headerString(in.d.Headers, HeaderCorrelationID),
		CausationID:   headerString(in.d.Headers, HeaderCausationID),
		Traceparent:   headerString(in.d.Headers, HeaderTraceparent),
		Attempt:       in.attempt,
	}
	if p, ok := in.env.value.(*T); ok {
		ev.Entity = *p
		return ev, nil
	}
	if err := json.Unmarshal(in.env.entity, &ev.Entity); err != nil {
		return ev, malformed("entity does not decode into %T: %v", ev.Entity, err)
	}
	return ev, nil
}

func (b *Bus) register(info EventInfo, decode func([]byte, string) (envelope, error), fn func(context.Context, incoming) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return fmt.Errorf("eventbus: handler for %s registered after Run", info.Type())
	}
	if info.Service == "" {
		return errors.New("eventbus: handler registered for an EventType not made by NewEventType")
	}
	if _, dup := b.handlers[info.Type()]; dup {
		return fmt.Errorf("eventbus: a handler for %s is already registered", info.Type())
	}
	b.handlers[info.Type()] = &handler{info: info, decode: decode, fn: fn}
	return nil
}

// dispatch handles one delivery and settles it: ack, retry, or dead-letter.
// A delivery is acked only after it was handled, or after its copy in a retry
// or dead-letter queue was confirmed. It reports the outcome to the type's
// observer and records the consumer span when the bus has them.
func (b *Bus) dispatch(ctx context.Context, handlers map[string]*handler, d amqp.Delivery) {
	h := handlers[d.Type]
	if h == nil {
		h = b.catchAll(d.Type) // HandleAll's catch-all, if registered
	}
	if h == nil {
		// Every queue receives every event: this path reads no body.
		b.stats.unhandled.Add(1)
		if obs := b.cfg.Observer; obs != nil {
			obs.Unhandled()
		}
		_ = d.Ack(false)
		return
	}
	start := time.Now()
	attempt := headerInt(d.Headers, HeaderAttempt, 1)
	if b.tracer == nil {
		o, _ := b.handleDelivery(ctx, h, &d, attempt)
		if h.obs != nil && o != outcomeRequeued {
			h.obs.Consumed(o, time.Since(start))
		}
		return
	}
	ctx, span := b.startProcess(ctx, &d, attempt)
	o, err := b.handleDelivery(ctx, h, &d, attempt)
	if h.obs != nil && o != outcomeRequeued {
		h.obs.Consumed(o, time.Since(start))
	}
	endProcess(span, o, err)
}

// handleDelivery runs h on d and settles d; it returns the outcome and the
// handler's error (errDuplicate for a duplicate).
func (b *Bus) handleDelivery(ctx context.Context, h *handler, d *amqp.Delivery, attempt int) (Outcome, error) {
	err := b.validateDelivery(d)
	var env envelope
	if err == nil {
		env, err = h.decode(d.Body, d.MessageId)
	}
	if err == nil && h.check != nil {
		err = h.check(d.Type, env)
	}
	if err == nil {
		hctx := withCause(ctx, env.uuid, headerString(d.Headers, HeaderCorrelationID), headerString(d.Headers, HeaderTraceparent))
		hctx = WithActor(hctx, headerString(d.Headers, HeaderActorSubject), headerString(d.Headers, HeaderActorRole))
		err = safeCall(hctx, h.fn, incoming{env: env, d: d, attempt: attempt})
	}
	if err == nil || err == errDuplicate {
		b.stats.handled.Add(1)
		_ = d.Ack(false)
		if err == errDuplicate {
			return OutcomeDuplicate, err
		}
		return OutcomeHandled, nil
	}

	var mal *MalformedError
	var perm *PermanentError
	var unavailable *unavailableError
	switch {
	case errors.As(err, &mal):
		b.log.WarnContext(ctx, "malformed event dead-lettered", "type", d.Type, "message_id", d.MessageId, "reason", mal.Reason)
		return b.deadLetter(ctx, d, mal.Reason, attempt), err
	case errors.As(err, &perm):
		b.log.WarnContext(ctx, "event dead-lettered: permanent failure", "type", d.Type, "message_id", d.MessageId, "error", err)
		return b.deadLetter(ctx, d, err.Error(), attempt), err
	case errors.As(err, &unavailable):
		// Not this event's fault: the attempt does not count.
		b.log.InfoContext(ctx, "database unavailable; retrying without counting the attempt", "type", d.Type, "message_id", d.MessageId, "attempt", attempt, "error", err)
		return b.retry(ctx, d, attempt, attempt, err), err
	case attempt >= b.cfg.MaxAttempts:
		b.log.WarnContext(ctx, "event dead-lettered: attempts exhausted", "type", d.Type, "message_id", d.MessageId, "attempts", attempt, "error", err)
		return b.deadLetter(ctx, d, fmt.Sprintf("handler failed %d times, last error: %v", attempt, err), attempt), err
	default:
		b.log.InfoContext(ctx, "handler failed; retrying", "type", d.Type, "message_id", d.MessageId, "attempt", attempt, "error", err)
		return b.retry(ctx, d, attempt, attempt+1, err), err
	}
}

func safeCall(ctx context.Context, fn func(context.Context, incoming) error, in incoming) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return fn(ctx, in)
}

// validateDelivery checks the properties the guideline requires of an event.
func (b *Bus) validateDelivery(d *amqp.Delivery) error {
	if d.ContentType != "application/json" {
		return malformed("content_type %q, want application/json", d.ContentType)
	}
	if d.MessageId == "" {
		return malformed("message_id is missing")
	}
	if d.AppId == "" || len(d.Type) <= len(d.AppId) || d.Type[:len(d.AppId)] != d.AppId || d.Type[len(d.AppId)] != '.' {
		return malformed("app_id %q does not publish type %q", d.AppId, d.Type)
	}
	return nil
}

// retry sends a copy of d, numbered as attempt next, to the delay queue that
// follows attempt, through the service's own exchange, then acks d.
func (b *Bus) retry(ctx context.Context, d *amqp.Delivery, attempt, next int, cause error) Outcome {
	p := copyPublishing(d)
	p.Headers[HeaderAttempt] = int64(next)
	p.Headers[HeaderLastError] = truncate(cause.Error(), 1024)
	q := b.cfg.retryQueue(b.cfg.retryDelay(attempt))
	if !b.settle(ctx, d, q, p, &b.stats.retried) {
		return outcomeRequeued
	}
	return OutcomeRetried
}

// deadLetter sends a copy of d to the dead-letter queue with the reason, the
// attempt count and the original properties in headers, then acks d.
func (b *Bus) deadLetter(ctx context.Context, d *amqp.Delivery, reason string, attempts int) Outcome {
	p := copyPublishing(d)
	p.Headers[HeaderDeadReason] = truncate(reason, 4096)
	p.Headers[HeaderAttempt] = int64(attempts)
	p.Headers[HeaderDeadAt] = FormatFiredAt(time.Now())
	p.Headers[HeaderOrigMessageID] = d.MessageId
	p.Headers[HeaderOrigType] = d.Type
	p.Headers[HeaderOrigAppID] = d.AppId
	if !b.settle(ctx, d, b.cfg.deadLetterQueue(), p, &b.stats.deadLettered) {
		return outcomeRequeued
	}
	return OutcomeDeadLettered
}

// settle publishes p to the service's retry exchange with routing key q and
// acks d once the copy is confirmed. If the copy is not confirmed, d is
// nacked back to its queue: nothing is lost, it will be delivered again. It
// reports whether d was moved.
func (b *Bus) settle(ctx context.Context, d *amqp.Delivery, q string, p amqp.Publishing, counter interface{ Add(uint64) uint64 }) bool {
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.publishRaw(pctx, b.cfg.retryExchange(), []string{q}, []amqp.Publishing{p})[0]; err != nil {
		b.log.WarnContext(ctx, "could not move message; returning it to the queue", "queue", q, "message_id", d.MessageId, "error", err)
		_ = d.Nack(false, true)
		return false
	}
	counter.Add(1)
	_ = d.Ack(false)
	return true
}

func copyPublishing(d *amqp.Delivery) amqp.Publishing {
	h := make(amqp.Table, len(d.Headers)+8)
	for k, v := range d.Headers {
		h[k] = v
	}
	if _, ok := h[HeaderOrigExchange]; !ok {
		h[HeaderOrigExchange] = d.Exchange
		h[HeaderOrigRouting] = d.RoutingKey
	}
	return amqp.Publishing{
		Headers:         h,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}

func headerString(h amqp.Table, k string) string {
	s, _ := h[k].(string)
	return s
}

func headerInt(h amqp.Table, k string, def int) int {
	switch v := h[k].(type) {
	case int64:
		return int(v)
	case int32:
		return int(v)
	case int16:
		return int(v)
	case int8:
		return int(v)
	case int:
		return v
	case uint8:
		return int(v)
	case uint16:
		return int(v)
	case uint32:
		return int(v)
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
