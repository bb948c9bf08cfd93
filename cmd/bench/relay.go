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

// fastPathRun measures the outbox's fast path as the services use it: it
// commits cfg.messages rows in tracked transactions of one event each (not
// timed, 16 at a time), then times their commit owners' Committed calls
// (publish) until the relay has marked every row sent, keeping at most
// cfg.inflight events unconfirmed, as the direct publishing it is compared
// with.
func fastPathRun(ctx context.Context, cfg config, db *sqlx.DB, b *eventbus.Bus) (float64, error) {
	msgs, err := makeMessages(ctx, benchHappened, cfg.messages, cfg.size)
	if err != nil {
		return 0, err
	}
	// A long grace: the relay's sweep must not touch the rows while they
	// wait for the timed part.
	r, err := eventbus.NewRelay(db, b, eventbus.RelayConfig{Logger: cfg.log, FastPathGrace: time.Hour,
		FastPathTimeout: time.Minute, FastPathMaxInFlight: len(msgs)})
	if err != nil {
		return 0, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = r.Run(rctx); close(done) }()
	defer func() { cancel(); <-done }()
	for tracking := false; !tracking; { // Run registers the relay as it starts
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			return 0, err
		}
		te := eventbus.Track(db, tx)
		tracking = te != nil
		te.Discard()
		tx.Rollback()
		time.Sleep(time.Millisecond)
	}
	txs := make([]*eventbus.TxEvents, len(msgs))
	if err := parallel(ctx, 16, len(msgs), func(i int) error {
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if txs[i] = eventbus.Track(db, tx); txs[i] == nil {
			return fmt.Errorf("no relay tracks the database")
		}
		if err := eventbus.Enqueue(ctx, tx, msgs[i]); err != nil {
			return err
		}
		return tx.Commit()
	}); err != nil {
		return 0, err
	}
	start := time.Now()
	handed := 0
	for _, te := range txs {
		n := te.Len()
		for {
			s := r.Stats()
			if handed+n-int(s.FastPublished+s.FastReleased) <= cfg.inflight {
				break
			}
			time.Sleep(20 * time.Microsecond)
		}
		te.Committed()
		handed += n
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		s := r.Stats()
		if s.FastReleased > 0 {
			return 0, fmt.Errorf("fast path handed %d events back to the relay", s.FastReleased)
		}
		if s.FastMarked >= uint64(len(msgs)) {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("fast path marked %d of %d", s.FastMarked, len(msgs))
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	if _, err := db.ExecContext(ctx, `DELETE FROM eventbus_outbox`); err != nil {
		return 0, err
	}
	return rate(len(msgs), elapsed), nil
}
