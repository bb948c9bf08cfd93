package eventbus

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Observer is told what a Bus does, for metrics. Set it in Config.Observer;
// a nil Observer costs nothing. The bus calls its methods from many
// goroutines at once: they must be safe for concurrent use, cheap, and must
// not block. The Prometheus implementation is internal/telemetry's; any other
// metrics library fits behind the same two interfaces.
type Observer interface {
	// ForType is called once for each event type the bus publishes
	// (Publishes) or handles (Handle, HandleTx), when Run starts. The bus
	// keeps what it returns, so that counting a delivery is one method call
	// on a value resolved in advance, never a lookup by label.
	ForType(info EventInfo) TypeObserver
	// Unhandled counts one delivery of a type with no handler, acked unread.
	// Every queue receives every event of the platform, so this is the
	// bus's hottest path: keep it to an atomic add.
	Unhandled()
}

// TypeObserver counts the events of one type.
type TypeObserver interface {
	// Published counts one event of the type confirmed by the broker
	// (published to sagittarius-a; retries and dead letters do not count).
	Published()
	// Consumed counts one delivery of the type settled with outcome o;
	// handling is how long the bus spent on it from dispatch to the
	// decision (decoding, the handler and its transaction). A delivery the
	// bus could not move to a retry or dead-letter queue is returned to its
	// queue and not counted: it will be delivered again.
	Consumed(o Outcome, handling time.Duration)
}

// Outcome is how the bus settled one delivery of a handled type.
type Outcome uint8

// Outcomes of a delivery. Unhandled deliveries are counted by
// Observer.Unhandled, not with an Outcome.
const (
	OutcomeHandled      Outcome = iota // the handler succeeded; the delivery was acked
	OutcomeDuplicate                   // the inbox had the event's uuid: acked without running the handler (HandleTx)
	OutcomeRetried                     // the handler failed; a copy went to a retry queue
	OutcomeDeadLettered                // malformed, permanent failure or attempts exhausted: a copy went to the dead-letter queue
	outcomeRequeued                    // the copy was not confirmed: nacked back to the queue (not reported)
)

// String returns the outcome's metric label value: handled, duplicate,
// retried or dead_lettered.
func (o Outcome) String() string {
	switch o {
	case OutcomeHandled:
		return "handled"
	case OutcomeDuplicate:
		return "duplicate"
	case OutcomeRetried:
		return "retried"
	case OutcomeDeadLettered:
		return "dead_lettered"
	default:
		return "requeued"
	}
}

// errDuplicate is what a HandleTx handler returns to dispatch for an event
// the inbox already had: success, counted as a duplicate.
var errDuplicate = errors.New("eventbus: duplicate event")

// resolveObservers asks the observer for every published and handled type,
// once, at Run. Call with b.mu held.
func (b *Bus) resolveObservers() {
	obs := b.cfg.Observer
	if obs == nil {
		return
	}
	byType := make(map[string]TypeObserver, len(b.published)+len(b.handlers))
	for t, info := range b.published {
		byType[t] = obs.ForType(info)
	}
	for t, h := range b.handlers {
		o, ok := byType[t]
		if !ok {
			o = obs.ForType(h.info)
			byType[t] = o
		}
		h.obs = o
	}
	if b.all != nil {
		// The catch-all (HandleAll) counts each type it handles under that
		// type: one copy of its handler per known type, with the type's observer.
		b.allByType = make(map[string]*handler, len(b.allTypes))
		for t, info := range b.allTypes {
			o, ok := byType[t]
			if !ok {
				o = obs.ForType(info)
				byType[t] = o
			}
			h := *b.all
			h.obs = o
			b.allByType[t] = &h
		}
	}
	b.pubObs.Store(&byType)
}

// countPublished reports a confirmed event of type t to the observer.
func (b *Bus) countPublished(t string) {
	if m := b.pubObs.Load(); m != nil {
		if o := (*m)[t]; o != nil {
			o.Published()
		}
	}
}

// DeadLetterDepth returns how many messages wait in the service's
// dead-letter queue, with a passive declare on a channel of its own (so a
// failure cannot disturb publishing or consuming). It returns an error
// wrapping ErrNotConnected while the bus has no connection. Safe for
// concurrent use; one round trip to the broker.
func (b *Bus) DeadLetterDepth(ctx context.Context) (int, error) {
	conn := b.conn.Load()
	if conn == nil || conn.IsClosed() {
		return 0, ErrNotConnected
	}
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		ch, err := conn.Channel()
		if err != nil {
			done <- result{0, fmt.Errorf("%w: %w", ErrNotConnected, err)}
			return
		}
		defer ch.Close()
		q, err := ch.QueueDeclarePassive(b.cfg.deadLetterQueue(), true, false, false, false, nil)
		if err != nil {
			done <- result{0, fmt.Errorf("eventbus: inspect %s: %w", b.cfg.deadLetterQueue(), err)}
			return
		}
		done <- result{q.Messages, nil}
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
