package eventbus

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
)

// Enqueue writes msgs into the outbox table of the service's database inside
// tx, the transaction of the state change that caused them. If tx commits,
// they are published; if it rolls back, they never existed.
//
// When tx is tracked (Track: mysqldb.InTx and HandleTx track their
// transactions while a Relay runs on the database), the code that commits tx
// publishes them right after the commit (the fast path), and the rows
// become available to the relay only after RelayConfig.FastPathGrace, as a
// safety net. Otherwise a Relay publishes them: call Relay.Notify after the
// commit to publish at once rather than at the next poll.
func Enqueue(ctx context.Context, tx *sqlx.Tx, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	now := time.Now().UTC()
	tc, endSpan := enqueueTrace(ctx, msgs) // the trace context stored with the rows (trace.go)
	err := enqueue(ctx, tx, now, tc, msgs)
	endSpan(err)
	return err
}

func enqueue(ctx context.Context, tx *sqlx.Tx, now time.Time, tc sql.NullString, msgs []Message) error {
	available := now
	te := trackedEvents(tx)
	if te != nil {
		available = now.Add(te.relay.cfg.FastPathGrace)
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO eventbus_outbox (uuid, type, app_id, fired_at, headers, body, created_at, available_at, traceparent) VALUES `)
	args := make([]any, 0, len(msgs)*9)
	for i, m := range msgs {
		if m.ID == "" || m.Type == "" || m.AppID == "" || len(m.Body) == 0 {
			return fmt.Errorf("eventbus: enqueue: message %d is incomplete; build messages with EventType.New", i)
		}
		headers, err := json.Marshal(m.Headers)
		if err != nil {
			return fmt.Errorf("eventbus: enqueue %s: %w", m.ID, err)
		}
		if i > 0 {
			q.WriteString(",")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, m.ID, m.Type, m.AppID, m.FiredAt.UTC(), string(headers), m.Body, now, available, tc)
	}
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("eventbus: enqueue: %w", err)
	}
	if te != nil {
		// The fast path publishes these messages themselves, not the rows:
		// give them the trace context stored with the rows, as the relay does.
		traced := make([]Message, len(msgs))
		for i, m := range msgs {
			traced[i] = withStoredTrace(m, tc)
		}
		te.add(traced)
	} else {
		lastUntracked.Store(time.Now().UnixNano())
	}
	return nil
}

// RelayConfig configures a Relay. Zero values take the documented defaults.
type RelayConfig struct {
	BatchSize       int           // rows published per transaction; default 500
	PollInterval    time.Duration // how often to look for rows without a Notify; default 1s
	PublishTimeout  time.Duration // bound on one batch's publish and confirms; default 15s
	MaxBackoff      time.Duration // cap of a failing row's backoff (1s, 2s, 4s, …); default 1m
	Retention       time.Duration // sent rows are deleted after this; default 24h
	InboxRetention  time.Duration // inbox rows are deleted after this; default 7 days
	CleanupInterval time.Duration // how often the deletions run; default 1m
	Logger          *slog.Logger  // default slog.Default()

	// The fast path (see Track). FastPathGrace is how long a tracked
	// transaction's rows stay invisible to the relay (default 10s): the
	// relay sweeps them after it only if the fast path did not mark them
	// sent (the process died, or marking failed). FastPathTimeout bounds
	// the wait for the broker's confirms of one transaction's events
	// (default 3s, less than FastPathGrace); unconfirmed events are then
	// released to the relay. FastPathMaxInFlight bounds the events in
	// flight on the fast path (default 10000); beyond it, rows go to the
	// relay at once.
	FastPathGrace       time.Duration
	FastPathTimeout     time.Duration
	FastPathMaxInFlight int
	// FastPathHook, for crash tests only, may stop the fast path at a stage.
	FastPathHook FastPathHook
}

// Relay publishes the rows of the outbox table with publisher confirms and
// marks them sent. While it runs, it is also the fast path of the
// transactions committed on its database by the code that tracks them
// (Track: mysqldb.InTx, HandleTx): those publish their own events right
// after the commit, the relay marks them sent once confirmed, and its sweep
// publishes only what the fast path left (see Track). Several relays (one per instance of a service) can run on
// the same table at once: rows are claimed with FOR UPDATE SKIP LOCKED, so no
// row is published by two relays at once and none is skipped. A row whose
// publishing fails backs off exponentially without holding back the rows
// behind it. Delivery is at least once: a relay that dies after the broker
// confirmed a batch but before marking it sent publishes it again.
//
// A relay keeps one connection of db for itself, at READ COMMITTED for its
// whole session (see PublishPending), and closes it when Run returns.
type Relay struct {
	db   *sqlx.DB
	bus  *Bus
	cfg  RelayConfig
	log  *slog.Logger
	wake chan struct{}

	connMu sync.Mutex // serializes the relay's statements on conn
	conn   *sqlx.Conn // nil until first used, and after an error

	sent, failed atomic.Uint64
	fast         fastState
}

// NewRelay returns a relay publishing db's outbox through b, and registers
// its Notify with b so that handlers' events are relayed on commit.
func NewRelay(db *sqlx.DB, b *Bus, cfg RelayConfig) (*Relay, error) {
	if db == nil || b == nil {
		return nil, errors.New("eventbus: NewRelay needs a database and a bus")
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 500
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = 15 * time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = time.Minute
	}
	if cfg.Retention == 0 {
		cfg.Retention = 24 * time.Hour
	}
	if cfg.InboxRetention == 0 {
		cfg.InboxRetention = 7 * 24 * time.Hour
	}
	if cfg.CleanupInterval == 0 {
		cfg.CleanupInterval = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FastPathGrace == 0 {
		cfg.FastPathGrace = 10 * time.Second
	}
	if cfg.FastPathTimeout == 0 {
		cfg.FastPathTimeout = min(3*time.Second, cfg.FastPathGrace/2)
	}
	if cfg.FastPathMaxInFlight == 0 {
		cfg.FastPathMaxInFlight = 10000
	}
	if cfg.BatchSize < 1 || cfg.PollInterval < 0 || cfg.PublishTimeout < 0 {
		return nil, errors.New("eventbus: RelayConfig: BatchSize, PollInterval and PublishTimeout must be positive")
	}
	if cfg.FastPathTimeout <= 0 || cfg.FastPathGrace <= cfg.FastPathTimeout || cfg.FastPathMaxInFlight < 1 {
		return nil, errors.New("eventbus: RelayConfig: want 0 < FastPathTimeout < FastPathGrace and FastPathMaxInFlight >= 1")
	}
	r := &Relay{db: db, bus: b, cfg: cfg, log: cfg.Logger.With("component", "outbox-relay", "service", b.Service()), wake: make(chan struct{}, 1)}
	r.fast.confirmWake = make(chan struct{}, 1)
	r.fast.markWake = make(chan struct{}, 1)
	b.SetAfterCommit(r.Notify)
	return r, nil
}

// Notify wakes the relay to publish now. It never blocks. Safe for
// concurrent use. While Run runs, it does nothing unless events were
// enqueued in a transaction the fast path does not track in the last 10
// seconds (the fast path publishes the others, and wakes the relay itself
// for what it hands back).
func (r *Relay) Notify() {
	if r.fast.on.Load() && time.Now().UnixNano()-lastUntracked.Load() > int64(notifyWindow) {
		return
	}
	r.wake1()
}

func (r *Relay) wake1() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// RelayStats are the relay's counters since it was created: Sent and
// Failed count the rows its sweeps published and failed to publish;
// FastPublished, FastMarked and FastReleased count the events the fast path
// had confirmed, marked sent, and handed back to the sweep.
type RelayStats struct{ Sent, Failed, FastPublished, FastMarked, FastReleased uint64 }

// Stats returns the relay's counters. Safe for concurrent use.
func (r *Relay) Stats() RelayStats {
	return RelayStats{Sent: r.sent.Load(), Failed: r.failed.Load(),
		FastPublished: r.fast.published.Load(), FastMarked: r.fast.marked.Load(), FastReleased: r.fast.released.Load()}
}

// Run publishes pending rows until ctx is cancelled, then returns nil. While
// the bus is disconnected it waits; rows stay in the table meanwhile.
//
// While Run runs, the relay is the fast path of transactions on its
// database (Track): it waits for their confirms and marks their rows sent.
// When ctx ends it stops taking new ones, waits for the confirms in flight
// (up to FastPathTimeout) and marks what they confirmed before returning.
func (r *Relay) Run(ctx context.Context) error {
	defer r.closeConn()
	confirmerDone, markerDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(confirmerDone); r.confirmLoop(ctx) }()
	go func() { defer close(markerDone); r.markLoop(ctx, confirmerDone) }()
	r.fast.on.Store(true)
	register(r)
	defer func() {
		unregister(r)
		r.fast.on.Store(false)
		<-markerDone
	}()
	nextCleanup := time.Now()
	backoff := 100 * time.Millisecond
	for {
		n, err := r.PublishPending(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := r.cfg.PollInterval
		switch {
		case err != nil:
			if !errors.Is(err, ErrNotConnected) {
				r.log.Warn("outbox relay: batch failed", "error", err, "retry_in", backoff)
			}
			wait = backoff
			backoff = min(backoff*2, 5*time.Second)
		case n == r.cfg.BatchSize:
			wait = 0 // more are waiting
			backoff = 100 * time.Millisecond
		default:
			backoff = 100 * time.Millisecond
		}
		if time.Now().After(nextCleanup) {
			if err := r.Cleanup(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("outbox relay: cleanup failed", "error", err)
			}
			nextCleanup = time.Now().Add(r.cfg.CleanupInterval)
		}
		if wait == 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

type outboxRow struct {
	ID       uint64    `db:"id"`
	UUID     string    `db:"uuid"`
	Type     string    `db:"type"`
	AppID    string    `db:"app_id"`
	FiredAt  time.Time `db:"fired_at"`
	Headers  string    `db:"headers"`
	Body     []byte    `db:"body"`
	Attempts uint      `db:"attempts"`

	Traceparent sql.NullString `db:"traceparent"` // trace context stored by Enqueue (trace.go)
}

// PublishPending publishes one batch of due rows in one transaction and
// returns how many it published. Rows the broker did not confirm get their
// attempts counted and are retried after a backoff. If the bus is not
// connected it returns an error wrapping ErrNotConnected and changes nothing.
func (r *Relay) PublishPending(ctx context.Context) (int, error) {
	if err := r.bus.Healthy(); err != nil {
		return 0, err
	}
	var n int
	err := r.withConn(ctx, func(conn *sqlx.Conn) error {
		var err error
		n, err = r.publishBatch(ctx, conn)
		return err
	})
	return n, err
}

// withConn runs f on the relay's own connection, opening it first if
// needed. The connection reads at READ COMMITTED for its whole session: the
// claim then locks the rows it returns and no gaps, so services inserting
// new rows in their own transactions never wait for (or deadlock with) a
// relay; under MySQL's default REPEATABLE READ the range scan would take
// next-key locks on the pending index. Setting the level once per session,
// not per transaction, saves a statement per batch. After an error the
// connection is closed, never returned to the pool with its session level.
func (r *Relay) withConn(ctx context.Context, f func(conn *sqlx.Conn) error) error {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if r.conn == nil {
		conn, err := r.db.Connx(ctx)
		if err != nil {
			return fmt.Errorf("outbox relay: connect: %w", err)
		}
		r.conn = conn
		if _, err := conn.ExecContext(ctx, `SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED`); err != nil {
			r.discardConn()
			return fmt.Errorf("outbox relay: set isolation level: %w", err)
		}
	}
	err := f(r.conn)
	if err != nil && !errors.Is(err, ErrNotConnected) {
		r.discardConn()
	}
	return err
}

// discardConn closes the relay's connection instead of returning it to the
// pool. Call with connMu held.
func (r *Relay) discardConn() {
	if r.conn == nil {
		return
	}
	// A Raw function returning driver.ErrBadConn makes database/sql close
	// the connection rather than pool it.
	_ = r.conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = r.conn.Close()
	r.conn = nil
}

func (r *Relay) closeConn() {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	r.discardConn()
}

// publishBatch is PublishPending on conn.
func (r *Relay) publishBatch(ctx context.Context, conn *sqlx.Conn) (int, error) {
	if r.fast.on.Load() {
		// With the fast path, most wake-ups (Notify after each commit) find
		// nothing due: one read without locks instead of a claim transaction.
		var due bool
		if err := conn.GetContext(ctx, &due, `SELECT EXISTS (SELECT 1 FROM eventbus_outbox
			WHERE sent_at IS NULL AND available_at <= ?)`, time.Now().UTC()); err != nil {
			return 0, fmt.Errorf("look for due rows: %w", err)
		}
		if !due {
			return 0, nil
		}
	}
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UTC()
	rows, err := r.claim(ctx, tx, now)
	if err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return 0, tx.Commit()
	}

	errs := make([]error, len(rows))
	var msgs []Message
	var idx []int
	for i, row := range rows {
		m := Message{ID: row.UUID, Type: row.Type, AppID: row.AppID, FiredAt: row.FiredAt, Body: row.Body}
		if err := json.Unmarshal([]byte(row.Headers), &m.Headers); err != nil {
			errs[i] = fmt.Errorf("headers: %w", err)
			continue
		}
		m = withStoredTrace(m, row.Traceparent)
		if err := r.bus.checkPublishable([]Message{m}); err != nil {
			errs[i] = err
			continue
		}
		msgs = append(msgs, m)
		idx = append(idx, i)
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	perr := r.bus.publishEach(pctx, msgs)
	cancel()
	notConnected := 0
	for j, e := range perr {
		errs[idx[j]] = e
		if errors.Is(e, ErrNotConnected) {
			notConnected++
		}
	}
	if notConnected == len(msgs) && len(msgs) > 0 {
		// Nothing was sent: leave the rows as they are.
		return 0, fmt.Errorf("outbox relay: %w", perr[0])
	}

	var sent []any
	for i, row := range rows {
		if errs[i] == nil {
			sent = append(sent, row.ID)
			continue
		}
		r.failed.Add(1)
		delay := min(time.Duration(1<<min(row.Attempts, 16))*time.Second, r.cfg.MaxBackoff)
		r.log.Warn("outbox relay: event not published; will retry", "uuid", row.UUID, "type", row.Type, "attempts", row.Attempts+1, "retry_in", delay, "error", errs[i])
		if _, err := tx.ExecContext(ctx,
			`UPDATE eventbus_outbox SET attempts = attempts + 1, available_at = ?, last_error = ? WHERE id = ?`,
			now.Add(delay), truncate(errs[i].Error(), 2000), row.ID); err != nil {
			return 0, fmt.Errorf("record failure of %s: %w", row.UUID, err)
		}
	}
	if len(sent) > 0 {
		q, args, err := sqlx.In(`UPDATE eventbus_outbox SET sent_at = ? WHERE id IN (?)`, time.Now().UTC(), sent)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return 0, fmt.Errorf("mark sent: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	r.sent.Add(uint64(len(sent)))
	return len(sent), nil
}

// claim locks and returns up to BatchSize due rows in tx, skipping rows
// other transactions hold. It reads them in the order of the pending index
// (sent_at, available_at, id), so that the scan stops after BatchSize rows
// and locks only those: ordered by id, MariaDB sorted the whole pending range
// and kept a lock on every pending row, and another relay claimed nothing
// until this one committed.
func (r *Relay) claim(ctx context.Context, tx *sqlx.Tx, now time.Time) ([]outboxRow, error) {
	var rows []outboxRow
	err := tx.SelectContext(ctx, &rows,
		`SELECT id, uuid, type, app_id, fired_at, headers, body, attempts, traceparent
		   FROM eventbus_outbox
		  WHERE sent_at IS NULL AND available_at <= ?
		  ORDER BY available_at, id
		  LIMIT ?
		  FOR UPDATE SKIP LOCKED`, now, r.cfg.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("claim outbox rows: %w", err)
	}
	return rows, nil
}

// Cleanup deletes sent outbox rows older than Retention and inbox rows older
// than InboxRetention, a thousand rows per statement.
func (r *Relay) Cleanup(ctx context.Context) error {
	now := time.Now().UTC()
	for _, s := range []struct {
		q      string
		before time.Time
	}{
		{`DELETE FROM eventbus_outbox WHERE sent_at IS NOT NULL AND sent_at < ? LIMIT 1000`, now.Add(-r.cfg.Retention)},
		{`DELETE FROM eventbus_inbox WHERE handled_at < ? LIMIT 1000`, now.Add(-r.cfg.InboxRetention)},
	} {
		for {
			n, err := r.deleteBatch(ctx, s.q, s.before)
			if err != nil {
				return err
			}
			if n < 1000 {
				break
			}
		}
	}
	return nil
}

// deleteBatch runs one cleanup statement on the relay's READ COMMITTED
// connection (see withConn), so that it locks no gaps new rows are
// inserted into. It commits by itself (autocommit).
func (r *Relay) deleteBatch(ctx context.Context, q string, before time.Time) (int64, error) {
	var n int64
	err := r.withConn(ctx, func(conn *sqlx.Conn) error {
		res, err := conn.ExecContext(ctx, q, before)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// Pending returns how many outbox rows are not yet published.
func (r *Relay) Pending(ctx context.Context) (int, error) {
	var n int
	err := r.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL`)
	return n, err
}
