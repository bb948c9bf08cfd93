package eventbus

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Emit enqueues one occurrence of the event et about entity in tx, the
// transaction of the state change that caused it: it builds the message
// (EventType.New: a new uuid, fired_at now, the correlation, causation and
// traceparent of ctx) and writes it into the outbox (Enqueue). If tx commits,
// the relay publishes it; if tx rolls back, it never existed. Call
// Relay.Notify after the commit to publish at once (HandleTx does this for
// handlers). The error names the event type; Emit does nothing else to tx.
func Emit[T any](ctx context.Context, tx *sqlx.Tx, et EventType[T], entity T) error {
	msg, err := et.New(ctx, entity)
	if err != nil {
		return err
	}
	if err := Enqueue(ctx, tx, msg); err != nil {
		return fmt.Errorf("eventbus: emit %s: %w", et.Type(), err)
	}
	return nil
}
