package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
)

// relayRun fills the outbox with cfg.messages rows (not timed), then times
// one relay publishing all of them.
func relayRun(ctx context.Context, cfg config, db *sqlx.DB, b *eventbus.Bus) (float64, error) {
	msgs, err := makeMessages(ctx, benchHappened, cfg.messages, cfg.size)
	if err != nil {
		return 0, err
	}
	for i := 0; i < len(msgs); i += 500 {
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			return 0, err
		}
		if err := eventbus.Enqueue(ctx, tx, msgs[i:min(i+500, len(msgs))]...); err != nil {
			tx.Rollback()
			return 0, err
		}
		if err := tx.Commit(); err != nil {
			return 0, err
		}
	}
	r, err := eventbus.NewRelay(db, b, eventbus.RelayConfig{Logger: cfg.log})
	if err != nil {
		return 0, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() { _ = r.Run(rctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Minute)
	for r.Stats().Sent < uint64(len(msgs)) {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("relay sent %d of %d", r.Stats().Sent, len(msgs))
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	if _, err := db.ExecContext(ctx, `DELETE FROM eventbus_outbox`); err != nil {
		return 0, err
	}
	return rate(len(msgs), elapsed), nil
}
