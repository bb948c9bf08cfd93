package eventbus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
)

// HandleTx registers h for events of type et, run exactly once per event
// uuid: h runs inside a database transaction on db that also records the
// event's uuid in eventbus_inbox. When the transaction commits, the delivery
// is acked; a redelivered event whose uuid is already recorded is acked
// without running h. Events h enqueues in tx (Enqueue) are committed with its
// changes and published right after the commit (the fast path, see Track)
// when a Relay runs on db, or relayed once committed.
//
// Outcomes are as for Handle: an error rolls everything back and retries the
// event later; a deadlock or lock wait timeout is retried at once, up to three
// times, before it counts as a failed attempt. An error while db does not
// answer a ping (the database is down or restarting) does not count as an
// attempt: the event is retried, without end, until db answers again; an
// outage of the service's own database never dead-letters events.
func HandleTx[T any](b *Bus, db *sqlx.DB, et EventType[T], h func(ctx context.Context, tx *sqlx.Tx, ev Event[T]) error) error {
	if db == nil {
		return errors.New("eventbus: HandleTx needs a database")
	}
	return b.register(et.Info(), typedDecoder[T](et.Info().EntityKey), func(ctx context.Context, in incoming) error {
		ev, err := decodeEvent[T](in)
		if err != nil {
			return err
		}
		for try := 1; ; try++ {
			dup, fast, err := handleOnce(ctx, db, ev, h)
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
	})
}

// handleOnce runs h in one transaction guarded by the inbox. It reports
// whether the event had already been handled, and whether the events h
// enqueued went to the fast path.
func handleOnce[T any](ctx context.Context, db *sqlx.DB, ev Event[T], h func(context.Context, *sqlx.Tx, Event[T]) error) (duplicate, fast bool, err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return false, false, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	te := Track(db, tx)
	defer te.Discard()
	// A concurrent duplicate blocks on the key until this transaction ends,
	// then sees the row. This insert is the transaction's first statement
	// and reads no snapshot: a handler's first plain SELECT takes the
	// snapshot, after the handler locked what it needs (payments' store
	// relies on that; keep it so).
	res, err := tx.ExecContext(ctx,
		`INSERT INTO eventbus_inbox (uuid, type, handled_at) VALUES (?, ?, ?)
		 ON DUPLICATE KEY UPDATE uuid = uuid`, ev.UUID, ev.Type, time.Now().UTC())
	if err != nil {
		return false, false, fmt.Errorf("record %s in inbox: %w", ev.UUID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, false, fmt.Errorf("record %s in inbox: %w", ev.UUID, err)
	} else if n == 0 {
		return true, false, nil
	}
	if err := h(ctx, tx, ev); err != nil {
		return false, false, err
	}
	if err := tx.Commit(); err != nil {
		return false, false, fmt.Errorf("commit: %w", err)
	}
	return false, te.Committed(), nil
}

// isTransientDBError reports MySQL deadlocks and lock wait timeouts.
func isTransientDBError(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205
	}
	return errors.Is(err, sql.ErrConnDone)
}

// unavailableError wraps the error of a handler that failed while its
// database did not answer: dispatch retries the event without counting the
// attempt.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return "database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// isFinal reports errors that dead-letter an event whatever the database does.
func isFinal(err error) bool {
	var mal *MalformedError
	var perm *PermanentError
	return errors.As(err, &mal) || errors.As(err, &perm)
}

// reachable pings db (a new connection if the pooled ones broke) for up to
// two seconds.
func reachable(ctx context.Context, db *sqlx.DB) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.PingContext(ctx) == nil
}
