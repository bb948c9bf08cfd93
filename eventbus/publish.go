package eventbus

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/trace"
)

// Publish publishes msgs to the exchange sagittarius-a and returns once the
// broker has confirmed every one of them (persistent messages to durable
// queues are confirmed once on disk). All messages are put in flight before
// the first confirm is awaited, and concurrent calls interleave, so many
// messages are in flight at once. Safe for concurrent use.
//
// Outcomes:
//   - nil: every message was confirmed.
//   - an error wrapping ErrNotConnected: ctx ended while the bus had no
//     connection (or the connection was blocked by a broker alarm); nothing
//     was sent.
//   - an error wrapping ErrNotConfirmed: some messages were not confirmed
//     (nacked or connection lost); the error names them. Publish them again.
//   - any other error: a message was refused before sending (its type was not
//     declared with Publishes, or its app_id is not this service).
//
// Services publish through the outbox (Enqueue and a Relay), which calls
// Publish; calling Publish directly skips the transactional guarantee.
func (b *Bus) Publish(ctx context.Context, msgs ...Message) error {
	if err := b.checkPublishable(msgs); err != nil {
		return err
	}
	return errors.Join(b.publishEach(ctx, msgs)...)
}

func (b *Bus) checkPublishable(msgs []Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range msgs {
		if m.AppID != b.cfg.Service {
			return fmt.Errorf("eventbus: message %s has app_id %q, but this bus publishes as %q", m.ID, m.AppID, b.cfg.Service)
		}
		if _, ok := b.published[m.Type]; !ok {
			return fmt.Errorf("eventbus: event type %s was not declared with Publishes", m.Type)
		}
	}
	return nil
}

// publishEach publishes msgs to sagittarius-a and returns one error per
// message, nil for a confirmed one.
func (b *Bus) publishEach(ctx context.Context, msgs []Message) []error {
	pubs := make([]amqp.Publishing, len(msgs))
	for i, m := range msgs {
		pubs[i] = toPublishing(m)
	}
	var spans []trace.Span
	if b.tracer != nil {
		spans = make([]trace.Span, len(msgs))
		for i := range msgs {
			spans[i] = b.startPublish(&msgs[i], &pubs[i])
		}
	}
	errs := b.publishRaw(ctx, Exchange, nil, pubs)
	for i, err := range errs {
		if err != nil {
			errs[i] = fmt.Errorf("event %s (%s): %w", msgs[i].ID, msgs[i].Type, err)
		} else {
			b.countPublished(msgs[i].Type)
		}
		if spans != nil {
			endSpan(spans[i], errs[i])
		}
	}
	return errs
}

// publishRaw publishes pubs to exchange, with routing keys keys[i] (or ""
// when keys is nil), and waits for their confirms. It returns one error per
// publishing.
func (b *Bus) publishRaw(ctx context.Context, exchange string, keys []string, pubs []amqp.Publishing) []error {
	errs := make([]error, len(pubs))
	ch, err := b.pubChannel(ctx)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	confirms := make([]*amqp.DeferredConfirmation, len(pubs))
	b.sendMu.Lock()
	for i := range pubs {
		key := ""
		if keys != nil {
			key = keys[i]
		}
		dc, err := ch.PublishWithDeferredConfirm(exchange, key, false, false, pubs[i])
		if err != nil {
			errs[i] = fmt.Errorf("%w: %w", ErrNotConfirmed, err)
			continue
		}
		confirms[i] = dc
	}
	b.sendMu.Unlock()
	for i, dc := range confirms {
		if dc == nil {
			continue
		}
		ok, err := dc.WaitContext(ctx)
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("%w: %w", ErrNotConfirmed, err)
		case !ok:
			errs[i] = fmt.Errorf("%w: nacked or connection lost", ErrNotConfirmed)
			b.nacked(ch)
		default:
			b.stats.published.Add(1)
		}
	}
	return errs
}

// toPublishing maps a Message to the AMQP properties the guideline requires.
func toPublishing(m Message) amqp.Publishing {
	h := make(amqp.Table, len(m.Headers))
	for k, v := range m.Headers {
		h[k] = v
	}
	return amqp.Publishing{
		Headers:       h,
		ContentType:   "application/json",
		DeliveryMode:  amqp.Persistent,
		MessageId:     m.ID,
		Type:          m.Type,
		AppId:         m.AppID,
		Timestamp:     m.FiredAt,
		CorrelationId: m.Headers[HeaderCorrelationID],
		Body:          m.Body,
	}
}
