package eventbus

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/sagittarius-a/sagittarius/internal/txhook"
)

// The fast path publishes the events of a transaction right after it
// commits, from the code that committed it, instead of waiting for the
// relay to claim them:
//
//	t := eventbus.Track(db, tx) // nil when no relay runs on db
//	defer t.Discard()
//	… eventbus.Enqueue(ctx, tx, msgs…) …   // rows become available to the relay only after FastPathGrace
//	err = tx.Commit()
//	t.Committed()                          // puts the events in flight at once, without waiting
//
// mysqldb.InTx and HandleTx do this, so store methods and handlers need
// nothing more. Committed only writes the frames (it never waits for the
// broker or the database); a goroutine of the relay waits for the confirms
// and marks the confirmed rows sent in batches (UPDATE … WHERE sent_at IS
// NULL). Rows the fast path does not confirm (broker away or blocked at
// commit time, nack, no confirm within FastPathTimeout) are released to the
// relay at once (available_at = now); rows of a process that died between
// commit and mark wait FastPathGrace, then the relay of any instance sweeps
// them. A row confirmed but not marked (crash, database error) is published a
// second time by that sweep: at least once, and the consumers' inbox absorbs
// it.

func init() {
	txhook.Set(func(db *sqlx.DB, tx *sqlx.Tx) txhook.Tracked {
		if t := Track(db, tx); t != nil {
			return t
		}
		return nil
	})
}

// running lists the relays whose Run is active, per database: a
// transaction does not carry its database, so Track finds the relay here.
// It is the package's only mutable state, and it holds relays only while
// they run.
var running = struct {
	sync.Mutex
	m map[*sql.DB][]*Relay
}{m: make(map[*sql.DB][]*Relay)}

// lastUntracked is the time (Unix ns) of the last Enqueue in a transaction
// that is not tracked (its rows are the relay's from the start).
// Relay.Notify wakes a relay whose fast path is on only if there was one in
// the last notifyWindow, so the Notify that follows every tracked commit
// costs nothing. A transaction that commits more than notifyWindow after its
// Enqueue waits for the relay's next poll instead.
var lastUntracked atomic.Int64

const notifyWindow = 10 * time.Second

// tracked maps the *sql.Tx of each tracked transaction to its TxEvents,
// from Track to Committed or Discard.
var tracked sync.Map

func register(r *Relay) {
	running.Lock()
	defer running.Unlock()
	running.m[r.db.DB] = append(running.m[r.db.DB], r)
}

func unregister(r *Relay) {
	running.Lock()
	defer running.Unlock()
	rs := running.m[r.db.DB]
	for i, x := range rs {
		if x == r {
			rs = append(rs[:i:i], rs[i+1:]...)
			break
		}
	}
	if len(rs) == 0 {
		delete(running.m, r.db.DB)
		return
	}
	running.m[r.db.DB] = rs
}

func runningRelay(db *sql.DB) *Relay {
	running.Lock()
	defer running.Unlock()
	rs := running.m[db]
	if len(rs) == 0 {
		return nil
	}
	return rs[len(rs)-1]
}

// TxEvents collects the events Enqueue writes in one tracked transaction;
// see Track. Its methods are safe on a nil *TxEvents (they do nothing).
type TxEvents struct {
	relay *Relay
	tx    *sql.Tx

	mu   sync.Mutex
	msgs []Message
	done bool
}

// Track prepares tx, a transaction on db that is not yet committed, for
// the fast path: the events Enqueue writes in tx are held back from the
// relay for RelayConfig.FastPathGrace and collected, and Committed, called
// by the code that commits tx once the commit succeeded, publishes them at
// once. Call Discard (deferred) in every case: it forgets tx. Track returns
// nil, and Enqueue behaves as without it (the relay publishes the rows),
// when no Relay on db is running in this process.
//
// Commit owners call it (mysqldb.InTx, HandleTx); code that commits a
// transaction of its own without it keeps the relay's path
// (Relay.Notify).
func Track(db *sqlx.DB, tx *sqlx.Tx) *TxEvents {
	if db == nil || tx == nil {
		return nil
	}
	r := runningRelay(db.DB)
	if r == nil {
		return nil
	}
	t := &TxEvents{relay: r, tx: tx.Tx}
	tracked.Store(tx.Tx, t)
	return t
}

// trackedEvents returns the TxEvents of tx, or nil.
func trackedEvents(tx *sqlx.Tx) *TxEvents {
	if tx == nil {
		return nil
	}
	v, ok := tracked.Load(tx.Tx)
	if !ok {
		return nil
	}
	return v.(*TxEvents)
}

func (t *TxEvents) add(msgs []Message) {
	t.mu.Lock()
	t.msgs = append(t.msgs, msgs...)
	t.mu.Unlock()
}

// Committed publishes the events collected in the transaction, which the
// caller has just committed successfully, and forgets the transaction. It
// does not wait: it puts them in flight (or hands them back to the relay if
// the broker is not connected) and returns; the relay's fast-path goroutine
// waits for the confirms and marks the rows sent. It reports whether the
// events, if any, were handed to the fast path. Do not call it when Commit
// failed: then the outcome of the commit is unknown, and the relay sweeps
// whatever did commit after FastPathGrace.
func (t *TxEvents) Committed() bool {
	if t == nil {
		return false
	}
	msgs, ok := t.finish()
	if !ok || len(msgs) == 0 {
		return false
	}
	t.relay.fastPublish(msgs)
	return true
}

// Discard forgets the transaction without publishing anything: after a
// rollback, or deferred after Committed (then it does nothing).
func (t *TxEvents) Discard() {
	if t == nil {
		return
	}
	t.finish()
}

// Len returns how many events were collected so far.
func (t *TxEvents) Len() int {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.msgs)
}

func (t *TxEvents) finish() ([]Message, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return nil, false
	}
	t.done = true
	tracked.Delete(t.tx)
	return t.msgs, true
}

// FastPathStage names a point of the fast path, for FastPathHook.
type FastPathStage string

// Stages of the fast path at which a hook may stop it.
const (
	// StageCommitted: the transaction committed; nothing is published yet.
	StageCommitted FastPathStage = "committed"
	// StageConfirmed: the broker confirmed the events; they are not marked sent yet.
	StageConfirmed FastPathStage = "confirmed"
)

// FastPathHook, when set in RelayConfig, is called at each stage with the
// events concerned; returning false stops the fast path there for those
// events, as if the process had died at that point: nothing further is done
// for them (no publish, no mark, no release), and the relay's sweep must
// recover. For crash tests only.
type FastPathHook func(stage FastPathStage, msgs []Message) bool

// inFlight is one transaction's events sent by the fast path.
type inFlight struct {
	msgs     []Message
	confirms []*amqp.DeferredConfirmation
	deadline time.Time
}

// fastState is the relay's fast-path state: events in flight waiting for
// their confirms, and rows to mark sent or release, for two goroutines of
// Run (confirmer and marker).
type fastState struct {
	mu       sync.Mutex
	inflight []inFlight
	nflight  int // messages in inflight
	marks    []string
	markAt   time.Time // latest confirm among marks
	releases []string

	confirmWake chan struct{}
	markWake    chan struct{}
	on          atomic.Bool // Run's goroutines are running

	published, marked, released atomic.Uint64
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// fastPublish sends msgs, whose rows are committed with a grace, and queues
// their confirms. It does not block on the broker: if the bus has no
// publishing channel now, or too many events are in flight, it releases the
// rows to the relay.
func (r *Relay) fastPublish(msgs []Message) {
	if h := r.cfg.FastPathHook; h != nil && !h(StageCommitted, msgs) {
		return
	}
	f := &r.fast
	if !f.on.Load() {
		r.release(msgs)
		return
	}
	if err := r.bus.checkPublishable(msgs); err != nil {
		r.release(msgs) // the relay records the error and backs off
		return
	}
	f.mu.Lock()
	full := f.nflight+len(msgs) > r.cfg.FastPathMaxInFlight
	f.mu.Unlock()
	ch := r.bus.currentPubChannel()
	if ch == nil || full {
		r.release(msgs)
		return
	}
	fl := inFlight{msgs: msgs, confirms: make([]*amqp.DeferredConfirmation, len(msgs)), deadline: time.Now().Add(r.cfg.FastPathTimeout)}
	var failed []Message
	r.bus.sendMu.Lock()
	for i, m := range msgs {
		pub := toPublishing(m)
		var span trace.Span
		if r.bus.tracer != nil {
			span = r.bus.startPublish(&m, &pub)
		}
		dc, err := ch.PublishWithDeferredConfirm(Exchange, "", false, false, pub)
		if span != nil {
			endSpan(span, err)
		}
		if err != nil {
			failed = append(failed, m)
			continue
		}
		fl.confirms[i] = dc
	}
	r.bus.sendMu.Unlock()
	if len(failed) > 0 {
		r.release(failed)
	}
	f.mu.Lock()
	f.inflight = append(f.inflight, fl)
	f.nflight += len(msgs)
	f.mu.Unlock()
	wake(f.confirmWake)
}

// release hands rows back to the relay: they become available at once.
func (r *Relay) release(msgs []Message) {
	f := &r.fast
	f.mu.Lock()
	for _, m := range msgs {
		f.releases = append(f.releases, m.ID)
	}
	f.mu.Unlock()
	wake(f.markWake)
}

// confirmLoop waits for the confirms of the fast path's events, in the
// order they were sent, and queues the rows to mark or release. After ctx
// ends it still waits for what is in flight (each up to its deadline).
func (r *Relay) confirmLoop(ctx context.Context) {
	f := &r.fast
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		f.mu.Lock()
		batch := f.inflight
		f.inflight = nil
		f.mu.Unlock()
		if len(batch) == 0 {
			if ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
			case <-f.confirmWake:
			}
			continue
		}
		var ok, bad []Message
		var last time.Time
		n := 0
		for _, fl := range batch {
			n += len(fl.msgs)
			for i, dc := range fl.confirms {
				if dc == nil {
					continue // not sent: already released
				}
				select {
				case <-dc.Done():
				default:
					timer.Reset(time.Until(fl.deadline))
					select {
					case <-dc.Done():
					case <-timer.C:
					}
					timer.Stop()
				}
				if acked := dc.Acked(); acked {
					ok = append(ok, fl.msgs[i])
				} else {
					bad = append(bad, fl.msgs[i]) // nacked, connection lost, or no confirm in time
				}
			}
		}
		last = time.Now()
		r.bus.stats.published.Add(uint64(len(ok)))
		for _, m := range ok {
			r.bus.countPublished(m.Type) // sagittarius_events_published_total, as for the relay's publishes
		}
		f.published.Add(uint64(len(ok)))
		f.mu.Lock()
		f.nflight -= n
		f.mu.Unlock()
		if len(bad) > 0 {
			r.release(bad)
		}
		if len(ok) == 0 {
			continue
		}
		if h := r.cfg.FastPathHook; h != nil && !h(StageConfirmed, ok) {
			continue
		}
		f.mu.Lock()
		for _, m := range ok {
			f.marks = append(f.marks, m.ID)
		}
		if last.After(f.markAt) {
			f.markAt = last
		}
		f.mu.Unlock()
		wake(f.markWake)
	}
}

// markEvery is the shortest interval between two batches of marks. Marks
// are not on any event's way to its consumers (the broker delivers before it
// confirms), so waiting costs no latency.
const markEvery = 10 * time.Millisecond

// markLoop marks confirmed rows sent and releases the others, in batches,
// until ctx ends and nothing more comes from confirmLoop (confirmed is
// closed).
func (r *Relay) markLoop(ctx context.Context, confirmerDone <-chan struct{}) {
	f := &r.fast
	var last time.Time
	for {
		// At most one batch per markEvery: under load, more confirms
		// share one UPDATE (one commit) instead of each taking its own.
		if wait := time.Until(last.Add(markEvery)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-confirmerDone:
			}
		}
		f.mu.Lock()
		marks, at, releases := f.marks, f.markAt, f.releases
		f.marks, f.releases = nil, nil
		f.mu.Unlock()
		if len(marks) > 0 || len(releases) > 0 {
			r.applyMarks(marks, at, releases)
			last = time.Now()
			continue
		}
		select {
		case <-confirmerDone:
			// Take what the confirmer queued last.
			f.mu.Lock()
			marks, at, releases = f.marks, f.markAt, f.releases
			f.marks, f.releases = nil, nil
			f.mu.Unlock()
			r.applyMarks(marks, at, releases)
			return
		case <-f.markWake:
		}
	}
}

// applyMarks runs the UPDATEs of one batch, retrying a failure twice. If
// they keep failing, the rows stay pending: the relay sweeps them after the
// grace (marked rows are then published a second time).
func (r *Relay) applyMarks(marks []string, at time.Time, releases []string) {
	const chunk = 500
	run := func(q string, t time.Time, ids []string) error {
		for i := 0; i < len(ids); i += chunk {
			part := ids[i:min(i+chunk, len(ids))]
			query, args, err := sqlx.In(q, t.UTC(), part)
			if err != nil {
				return err
			}
			var lastErr error
			for try := range 3 {
				if try > 0 {
					time.Sleep(time.Duration(try*50) * time.Millisecond)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, lastErr = r.db.ExecContext(ctx, query, args...)
				cancel()
				if lastErr == nil {
					break
				}
			}
			if lastErr != nil {
				return lastErr
			}
		}
		return nil
	}
	if len(marks) > 0 {
		if err := run(`UPDATE eventbus_outbox SET sent_at = ? WHERE uuid IN (?) AND sent_at IS NULL`, at, marks); err != nil {
			r.log.Warn("outbox fast path: could not mark confirmed events sent; the relay will publish them again after the grace", "events", len(marks), "error", err)
		} else {
			r.fast.marked.Add(uint64(len(marks)))
		}
	}
	if len(releases) > 0 {
		if err := run(`UPDATE eventbus_outbox SET available_at = ? WHERE uuid IN (?) AND sent_at IS NULL`, time.Now(), releases); err != nil {
			r.log.Warn("outbox fast path: could not release unconfirmed events to the relay; it sweeps them after the grace", "events", len(releases), "error", err)
		}
		r.fast.released.Add(uint64(len(releases)))
		r.wake1()
	}
}

// currentPubChannel returns the publishing channel if the bus is connected
// and not blocked by a broker alarm, nil otherwise. It never waits.
func (b *Bus) currentPubChannel() *amqp.Channel {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	if b.pch == nil || b.blocked {
		return nil
	}
	return b.pch
}
