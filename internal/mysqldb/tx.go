package mysqldb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/txhook"
)

// txAttempts bounds how many times InTx runs a transaction that keeps
// failing with a retryable error; txBackoff is the pause after the first
// failed attempt, doubled after each further one (5, 10, 20, 40 ms, each
// jittered by ±50%).
const (
	txAttempts = 5
	txBackoff  = 5 * time.Millisecond
)

// IsRetryable reports whether err (or an error it wraps) is a MySQL/MariaDB
// deadlock (1213) or lock wait timeout (1205): the transaction lost a lock
// conflict, was (or should be) rolled back, and may simply run again.
// Connection errors, duplicate keys and other statement errors are not
// retryable.
func IsRetryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

// InTx runs fn in a transaction on db and commits it when fn returns nil.
// An error of fn is returned as it is (the transaction rolled back); an
// error of BEGIN or COMMIT is returned wrapped ("begin: ...", "commit: ...").
//
// When fn or the commit fails with a retryable error (IsRetryable: deadlock,
// lock wait timeout), the transaction is rolled back and fn runs again in a
// new one, after a short jittered pause (from about 5 ms, doubling), up to 5
// attempts in all; then the last error is returned. When ctx ends during a
// pause, the last error is returned at once.
//
// fn may therefore run more than once: it must have no effect outside the
// transaction that another attempt would repeat or leave stale (no
// notifications, no appending to slices or counters declared outside it
// without resetting them first, no calls to other systems). Results meant
// for the caller should be assigned, not accumulated, by fn, and side
// effects such as waking the outbox relay belong after InTx returns nil.
//
// Events fn enqueues (eventbus.Enqueue) are published right after the
// commit when an eventbus.Relay runs on db in this process (the fast path,
// eventbus.Track, reached through internal/txhook): InTx puts them in flight without waiting for the broker.
// Waking the relay afterwards stays harmless.
func InTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := runTx(ctx, db, fn)
		if err == nil || !IsRetryable(err) || attempt >= txAttempts {
			return err
		}
		d := txBackoff << (attempt - 1)
		d = d/2 + rand.N(d) // jitter: [d/2, 3d/2)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// InTxNotify is InTx for a store that enqueues events: fn reports whether it
// enqueued any, and when the attempt that committed did, notify (the
// relay's Notify) is called once after the commit. notify is not called
// when InTx returns an error; it may be nil.
func InTxNotify(ctx context.Context, db *sqlx.DB, notify func(), fn func(tx *sqlx.Tx) (enqueued bool, err error)) error {
	var enqueued bool
	err := InTx(ctx, db, func(tx *sqlx.Tx) error {
		var err error
		enqueued, err = fn(tx)
		return err
	})
	if err == nil && enqueued && notify != nil {
		notify()
	}
	return err
}

// runTx runs one attempt of InTx.
func runTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // after a commit: sql.ErrTxDone, ignored
	events := txhook.Track(db, tx)
	defer events.Discard()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	events.Committed()
	return nil
}
