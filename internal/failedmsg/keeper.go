package failedmsg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
)

// Keeper moves a service's dead letters into its database, marks retried
// messages resolved once handled, and carries out retry operations. Run it
// as one actor of the service's run group (Run); its methods are safe for
// concurrent use.
type Keeper struct {
	store *Store
	bus   deadLetterBus
	log   *slog.Logger
	owner string // this instance, as the owner of retry operations' leases
	wake  chan struct{}

	// ResolveEvery is how often retried messages are checked against the
	// inbox; PollEvery how often interrupted retry operations are looked for.
	ResolveEvery, PollEvery time.Duration
}

// deadLetterBus is what the keeper needs from the bus (*eventbus.Bus).
type deadLetterBus interface {
	redeliverer
	ConsumeDeadLetters(ctx context.Context, fn func(ctx context.Context, dl eventbus.DeadLetter) error) error
}

// NewKeeper returns the keeper of the service whose database is db and bus
// is bus. logger may be nil.
func NewKeeper(db *sqlx.DB, bus *eventbus.Bus, logger *slog.Logger) *Keeper {
	if logger == nil {
		logger = slog.Default()
	}
	return &Keeper{
		store: NewStore(db), bus: bus, log: logger.With("component", "failed-messages"),
		owner: uuid.NewString(), wake: make(chan struct{}, 1),
		ResolveEvery: time.Second, PollEvery: 2 * time.Second,
	}
}

// Store returns the keeper's store.
func (k *Keeper) Store() *Store { return k.store }

// Wake makes the keeper look for retry operations to run now (after one is
// created).
func (k *Keeper) Wake() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// Run keeps dead letters, resolves retried messages and runs retry
// operations until ctx is done, then marks the operations it was running
// interrupted (the next start resumes them) and returns nil. It returns an
// error only when the bus's dead-letter consumer does.
func (k *Keeper) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	var consumeErr error
	wg.Go(func() {
		consumeErr = k.bus.ConsumeDeadLetters(ctx, func(ctx context.Context, dl eventbus.DeadLetter) error {
			isNew, err := k.store.Keep(ctx, dl)
			if err == nil && isNew {
				k.log.Info("dead letter kept", "message_id", dl.MessageID, "type", dl.Type, "reason", dl.Reason,
					"attempts", dl.Attempts, "retries", dl.Retries, "malformed", dl.Malformed)
			}
			return err
		})
	})
	wg.Go(func() { k.resolveLoop(ctx) })
	wg.Go(func() { k.retryLoop(ctx) })
	wg.Wait()
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.store.release(rctx, k.owner); err != nil {
		k.log.Warn("could not mark running retry operations interrupted; they resume when their lease expires", "error", err)
	}
	return consumeErr
}

func (k *Keeper) resolveLoop(ctx context.Context) {
	t := time.NewTicker(k.ResolveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := k.store.Resolve(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("could not resolve retried messages", "error", err)
		} else if n > 0 {
			k.log.Info("retried messages handled: resolved", "messages", n)
		}
	}
}

func (k *Keeper) retryLoop(ctx context.Context) {
	t := time.NewTicker(k.PollEvery)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			op, err := k.store.claim(ctx, k.owner)
			if err != nil {
				if ctx.Err() == nil {
					k.log.Warn("could not look for retry operations", "error", err)
				}
				break
			}
			if op == "" {
				break
			}
			k.log.Info("retry operation: running", "retry_id", op)
			if err := k.runOp(ctx, op); err != nil && ctx.Err() == nil {
				if errors.Is(err, errLeaseLost) {
					k.log.Warn("retry operation taken over by another instance", "retry_id", op)
				} else {
					k.log.Warn("retry operation stopped; it resumes when its lease expires", "retry_id", op, "error", err)
				}
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-k.wake:
		}
	}
}

// String describes the keeper for logs.
func (k *Keeper) String() string { return fmt.Sprintf("failed-messages keeper %s", k.owner) }
