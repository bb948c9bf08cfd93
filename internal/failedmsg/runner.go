package failedmsg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
)

// Lease is how long an instance holds a retry operation without renewing
// it (it renews it at every batch, and while it waits between batches; a
// batch's publishing is bounded well below it). An operation whose instance
// died is resumed by another, or by the restarted one, once its lease
// expired; one stopped cleanly is resumed at once.
const Lease = 45 * time.Second

// publishTimeout bounds the broker's confirms of one batch.
const publishTimeout = 20 * time.Second

// claim takes the oldest operation that is running or interrupted and not
// held by a live lease of another instance, and returns its id ("" when
// there is none). An operation taken after an interruption counts a restart.
func (s *Store) claim(ctx context.Context, owner string) (string, error) {
	var id string
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		id = ""
		now := s.now()
		var r struct {
			ID     string `db:"id"`
			Status string `db:"status"`
			Owner  string `db:"owner"`
		}
		err := tx.GetContext(ctx, &r, `SELECT id, status, owner FROM failed_message_retries
			WHERE status IN ('running', 'interrupted') AND (owner = '' OR owner = ? OR lease_until IS NULL OR lease_until < ?)
			ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`, owner, now)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		restart := 0
		if r.Status == string(OpInterrupted) || (r.Owner != "" && r.Owner != owner) {
			restart = 1
		}
		if _, err := tx.ExecContext(ctx, `UPDATE failed_message_retries SET status = 'running', owner = ?, lease_until = ?,
			restarts = restarts + ?, updated_at = ? WHERE id = ?`, owner, now.Add(Lease), restart, now, r.ID); err != nil {
			return err
		}
		id = r.ID
		return nil
	})
	return id, err
}

// renew extends owner's lease of op; errLeaseLost when owner no longer holds it.
func (s *Store) renew(ctx context.Context, op, owner string) error {
	now := s.now()
	res, err := s.db.ExecContext(ctx, `UPDATE failed_message_retries SET lease_until = ? WHERE id = ? AND owner = ? AND status = 'running'`,
		now.Add(Lease), op, owner)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return errLeaseLost
	}
	return nil
}

// release marks the operations owner holds as interrupted (at a stop), so
// that the next start resumes them at once.
func (s *Store) release(ctx context.Context, owner string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE failed_message_retries SET status = 'interrupted', owner = '', lease_until = NULL, updated_at = ?
		WHERE owner = ? AND status = 'running'`, s.now(), owner)
	return err
}

// toPublish is one message of a batch to republish.
type toPublish struct {
	seq     int
	fmID    string
	retries int
	msg     eventbus.Redelivery
}

// errLeaseLost stops an instance's work on an operation another instance took.
var errLeaseLost = errors.New("failedmsg: the lease of the retry operation was lost")

// prepareBatch takes the next batch of op's messages without a final
// outcome. Each pending message that can still be retried is marked
// retrying (retries + 1) and its item publishing, in one transaction, before
// anything is sent; the others get their final outcome (skipped) at once. An
// item found publishing (the process stopped between marking and
// confirming) is sent again if its message is still retrying at the same
// retry count, and counts as republished otherwise (it came back, failed or
// handled, so it was sent). It returns what to send and whether items are
// left after this batch. The lease is renewed.
func (s *Store) prepareBatch(ctx context.Context, op, owner string, size int) ([]toPublish, bool, error) {
	var out []toPublish
	more := false
	err := mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		out, more = nil, false
		now := s.now()
		res, err := tx.ExecContext(ctx, `UPDATE failed_message_retries SET lease_until = ?, updated_at = ? WHERE id = ? AND owner = ? AND status = 'running'`,
			now.Add(Lease), now, op, owner)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errLeaseLost
		}
		var items []struct {
			Seq     int    `db:"seq"`
			FMID    string `db:"failed_message_id"`
			Outcome string `db:"outcome"`
			Retries int    `db:"retries"`
		}
		if err := tx.SelectContext(ctx, &items, `SELECT seq, failed_message_id, outcome, retries FROM failed_message_retry_items
			WHERE retry_id = ? AND outcome IN ('pending', 'publishing') ORDER BY seq LIMIT ? FOR UPDATE`, op, size+1); err != nil {
			return err
		}
		if len(items) > size {
			items, more = items[:size], true
		}
		final := func(seq int, outcome, detail string) error {
			_, err := tx.ExecContext(ctx, `UPDATE failed_message_retry_items SET outcome = ?, detail = ?, done_at = ? WHERE retry_id = ? AND seq = ?`,
				outcome, clip(detail, 1024), now, op, seq)
			return err
		}
		for _, it := range items {
			m, err := scanMessage(tx.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM failed_messages WHERE id = ? FOR UPDATE`, it.FMID))
			if errors.Is(err, sql.ErrNoRows) {
				if err := final(it.Seq, OutcomeSkipped, "the failed message no longer exists"); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			gen := it.Retries
			switch {
			case it.Outcome == OutcomePublishing && m.Status == Retrying && m.Retries == it.Retries:
				// Marked, maybe sent, not confirmed before the stop: send again
				// (the same uuid: the inbox makes a second copy harmless).
			case it.Outcome == OutcomePublishing:
				if err := final(it.Seq, OutcomeRepublished, fmt.Sprintf("sent before a restart; the message is now %s", m.Status)); err != nil {
					return err
				}
				continue
			case m.Malformed != "":
				if err := final(it.Seq, OutcomeSkipped, "malformed: "+m.Malformed); err != nil {
					return err
				}
				continue
			case m.Status != Unresolved:
				if err := final(it.Seq, OutcomeSkipped, fmt.Sprintf("the message is %s", m.Status)); err != nil {
					return err
				}
				continue
			default:
				gen = m.Retries + 1
				if _, err := tx.ExecContext(ctx, `UPDATE failed_messages SET status = 'retrying', retries = ?, retried_at = ?, version = version + 1
					WHERE id = ?`, gen, now, m.ID); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `UPDATE failed_message_retry_items SET outcome = 'publishing', retries = ? WHERE retry_id = ? AND seq = ?`,
					gen, op, it.Seq); err != nil {
					return err
				}
			}
			out = append(out, toPublish{seq: it.Seq, fmID: m.ID, retries: gen, msg: eventbus.Redelivery{
				MessageID: m.MessageID, Type: m.Type, AppID: m.AppID, ContentType: m.ContentType, CorrelationID: m.CorrelationID,
				Timestamp: derefTime(m.Timestamp), Headers: m.Headers, Body: m.Body, Retries: gen,
			}})
		}
		return s.recount(ctx, tx, op, now)
	})
	return out, more, err
}

// settleBatch records the outcome of each sent message: republished when
// its error is nil, else failed (and the message unresolved again).
func (s *Store) settleBatch(ctx context.Context, op string, sent []toPublish, errs []error) error {
	return mysqldb.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		now := s.now()
		for i, p := range sent {
			outcome, detail := OutcomeRepublished, "sent to the service's own queue"
			if errs[i] != nil {
				outcome, detail = OutcomeFailed, "not confirmed by the broker: "+errs[i].Error()
				if _, err := tx.ExecContext(ctx, `UPDATE failed_messages SET status = 'unresolved', version = version + 1
					WHERE id = ? AND status = 'retrying' AND retries = ?`, p.fmID, p.retries); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE failed_message_retry_items SET outcome = ?, detail = ?, done_at = ?
				WHERE retry_id = ? AND seq = ? AND outcome = 'publishing'`, outcome, clip(detail, 1024), now, op, p.seq); err != nil {
				return err
			}
		}
		return s.recount(ctx, tx, op, now)
	})
}

// recount sets op's counters from its items, and completes it when every
// item has its final outcome.
func (s *Store) recount(ctx context.Context, tx *sqlx.Tx, op string, now time.Time) error {
	var c struct {
		Done      int `db:"done"`
		Succeeded int `db:"succeeded"`
		Total     int `db:"total"`
	}
	if err := tx.GetContext(ctx, &c, `SELECT COUNT(*) AS total,
		COALESCE(SUM(outcome IN ('republished', 'skipped', 'failed')), 0) AS done,
		COALESCE(SUM(outcome = 'republished'), 0) AS succeeded
		FROM failed_message_retry_items WHERE retry_id = ?`, op); err != nil {
		return err
	}
	status, finished := string(OpRunning), sql.NullTime{}
	if c.Done == c.Total {
		status, finished = string(OpCompleted), sql.NullTime{Time: now, Valid: true}
	}
	_, err := tx.ExecContext(ctx, `UPDATE failed_message_retries SET done = ?, succeeded = ?, failed = ?, status = ?, finished_at = ?,
		updated_at = ?, owner = IF(? = 'completed', '', owner) WHERE id = ?`,
		c.Done, c.Succeeded, c.Done-c.Succeeded, status, finished, now, status, op)
	return err
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// redeliverer is what the runner needs from the bus.
type redeliverer interface {
	Redeliver(ctx context.Context, msgs ...eventbus.Redelivery) []error
}

// runOp carries out operation op until it is complete, its lease is lost or
// ctx is done: batches of its batch size, at most its rate.
func (k *Keeper) runOp(ctx context.Context, op string) error {
	r, err := k.store.GetRetry(ctx, op)
	if err != nil {
		return err
	}
	size := max(r.BatchSize, 1)
	for ctx.Err() == nil {
		start := time.Now()
		batch, more, err := k.store.prepareBatch(ctx, op, k.owner, size)
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			msgs := make([]eventbus.Redelivery, len(batch))
			for i, p := range batch {
				msgs[i] = p.msg
			}
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
			errs := k.bus.Redeliver(pctx, msgs...)
			cancel()
			if err := k.store.settleBatch(context.WithoutCancel(ctx), op, batch, errs); err != nil {
				return err
			}
			k.log.Info("retry operation: batch sent", "retry_id", op, "messages", len(batch))
		}
		if !more {
			return nil
		}
		if r.RatePerSecond > 0 && len(batch) > 0 {
			wait := time.Duration(float64(len(batch))/r.RatePerSecond*float64(time.Second)) - time.Since(start)
			for wait > 0 && ctx.Err() == nil {
				step := min(wait, Lease/3)
				select {
				case <-ctx.Done():
				case <-time.After(step):
				}
				wait -= step
				if err := k.store.renew(ctx, op, k.owner); err != nil && ctx.Err() == nil {
					return err
				}
			}
		}
	}
	return nil
}
