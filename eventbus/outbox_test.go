package eventbus_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

func migratedDB(t *testing.T) *sqlx.DB {
	t.Helper()
	db := testinfra.NewDatabase(t)
	if err := eventbus.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if err := eventbus.Migrate(context.Background(), db); err != nil {
		t.Fatalf("Migrate is not idempotent: %v", err)
	}
	if _, err := db.Exec(`CREATE TABLE widgets (id VARCHAR(64) PRIMARY KEY, n INT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func startRelay(t *testing.T, db *sqlx.DB, b *eventbus.Bus, cfg eventbus.RelayConfig) *eventbus.Relay {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	r, err := eventbus.NewRelay(db, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// makeWidget is a store method: the change and its event in one transaction.
func makeWidget(ctx context.Context, db *sqlx.DB, w widget, fail bool) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, n) VALUES (?, ?)`, w.ID, w.N); err != nil {
		return err
	}
	m, err := widgetMade.New(ctx, w)
	if err != nil {
		return err
	}
	if err := eventbus.Enqueue(ctx, tx, m); err != nil {
		return err
	}
	if fail {
		return errors.New("business rule broken after the event was enqueued")
	}
	return tx.Commit()
}

func countRows(t *testing.T, db *sqlx.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Get(&n, q, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOutboxPublishesCommittedChangesExactlyOnceAndRolledBackOnesNever(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := migratedDB(t)
	tp := newTap(t, url, "test.external-observer")
	b := publisherBus(t, url)
	r := startRelay(t, db, b, eventbus.RelayConfig{PollInterval: 50 * time.Millisecond})
	ctx := context.Background()

	if err := makeWidget(ctx, db, newWidget(1), true); err == nil {
		t.Fatal("expected the failing change to fail")
	}
	if err := makeWidget(ctx, db, newWidget(2), false); err != nil {
		t.Fatal(err)
	}
	r.Notify()
	waitFor(t, 10*time.Second, "the committed event", func() bool { return tp.count() >= 1 })
	time.Sleep(300 * time.Millisecond) // let any wrong second publication arrive
	msgs := tp.all()
	if len(msgs) != 1 {
		t.Fatalf("tap received %d messages, want exactly 1", len(msgs))
	}
	var w widget
	body := decodeBody(t, msgs[0].Body)
	if err := jsonUnmarshal(body["widget"], &w); err != nil || w.N != 2 {
		t.Errorf("published widget %+v, want n=2", w)
	}
	if n := countRows(t, db, `SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL`); n != 0 {
		t.Errorf("%d rows still pending", n)
	}
	if n := countRows(t, db, `SELECT COUNT(*) FROM widgets`); n != 1 {
		t.Errorf("%d widgets, want 1", n)
	}
}

func TestTwoRelaysPublishEveryRowOnce(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := migratedDB(t)
	tp := newTap(t, url, "test.external-observer")
	ctx := context.Background()
	const rows = 2000
	for i := 0; i < rows; i += 100 {
		tx := db.MustBeginTx(ctx, nil)
		var msgs []eventbus.Message
		for j := i; j < i+100; j++ {
			msgs = append(msgs, mustMessage(t, ctx, widgetMade, newWidget(j)))
		}
		if err := eventbus.Enqueue(ctx, tx, msgs...); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	// Two instances of the same service, each with its bus and relay.
	b1 := publisherBus(t, url)
	b2 := publisherBus(t, url)
	r1 := startRelay(t, db, b1, eventbus.RelayConfig{BatchSize: 50, PollInterval: 10 * time.Millisecond})
	r2 := startRelay(t, db, b2, eventbus.RelayConfig{BatchSize: 50, PollInterval: 10 * time.Millisecond})
	waitFor(t, 30*time.Second, "every row published", func() bool { return tp.count() >= rows })
	time.Sleep(300 * time.Millisecond)
	seen := map[string]int{}
	for _, d := range tp.all() {
		seen[d.MessageId]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s published %d times", id, n)
		}
	}
	if len(seen) != rows {
		t.Errorf("%d distinct events published, want %d", len(seen), rows)
	}
	s1, s2 := r1.Stats().Sent, r2.Stats().Sent
	t.Logf("relay 1 sent %d, relay 2 sent %d", s1, s2)
	if s1+s2 != rows {
		t.Errorf("relays sent %d in total, want %d", s1+s2, rows)
	}
}

func TestFailingRowBacksOffWithoutBlockingTheRest(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := migratedDB(t)
	tp := newTap(t, url, "test.external-observer")
	// This bus does not declare widget_shipped: those rows cannot be published.
	b := startBus(t, eventbus.Config{URL: url, Service: "test.widgets"}, func(b *eventbus.Bus) {
		if err := b.Publishes(widgetMade); err != nil {
			t.Fatal(err)
		}
	})
	ctx := context.Background()
	tx := db.MustBeginTx(ctx, nil)
	bad := mustMessage(t, ctx, widgetShipped, newWidget(0))
	msgs := []eventbus.Message{bad}
	for i := 1; i <= 10; i++ {
		msgs = append(msgs, mustMessage(t, ctx, widgetMade, newWidget(i)))
	}
	if err := eventbus.Enqueue(ctx, tx, msgs...); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, db, b, eventbus.RelayConfig{PollInterval: 20 * time.Millisecond})
	waitFor(t, 10*time.Second, "the good rows published", func() bool { return tp.count() == 10 })
	waitFor(t, 5*time.Second, "the failure recorded", func() bool {
		return countRows(t, db, `SELECT attempts FROM eventbus_outbox WHERE uuid = ?`, bad.ID) >= 1
	})
	var row struct {
		Attempts  int       `db:"attempts"`
		LastError string    `db:"last_error"`
		Available time.Time `db:"available_at"`
	}
	if err := db.Get(&row, `SELECT attempts, last_error, available_at FROM eventbus_outbox WHERE uuid = ?`, bad.ID); err != nil {
		t.Fatal(err)
	}
	if row.Available.Before(time.Now().UTC()) {
		t.Errorf("failed row available again at %v: no backoff", row.Available)
	}
	if row.LastError == "" {
		t.Error("failed row has no last_error")
	}
	if r.Stats().Failed == 0 {
		t.Error("relay counted no failure")
	}
	if n, err := r.Pending(ctx); err != nil || n != 1 {
		t.Errorf("Pending = %d, %v; want 1", n, err)
	}
}

func TestCleanupDeletesOnlyOldSentRows(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := migratedDB(t)
	b := publisherBus(t, url)
	ctx := context.Background()
	for i := range 3 {
		if err := makeWidget(ctx, db, newWidget(i), false); err != nil {
			t.Fatal(err)
		}
	}
	r, err := eventbus.NewRelay(db, b, eventbus.RelayConfig{Retention: time.Hour, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.PublishPending(ctx); err != nil || n != 3 {
		t.Fatalf("PublishPending = %d, %v", n, err)
	}
	if err := makeWidget(ctx, db, newWidget(9), false); err != nil { // pending, must survive
		t.Fatal(err)
	}
	db.MustExec(`UPDATE eventbus_outbox SET sent_at = ? WHERE sent_at IS NOT NULL LIMIT 2`, time.Now().UTC().Add(-2*time.Hour))
	if err := r.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, db, `SELECT COUNT(*) FROM eventbus_outbox`); n != 2 {
		t.Errorf("%d rows left, want 2 (one recent sent row, one pending)", n)
	}
}

func TestInboxRunsARedeliveredEventOnce(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := migratedDB(t)
	var runs atomic.Int32
	var failOnce sync.Once
	consumer := startBus(t, eventbus.Config{URL: url, Service: "test.consumer", RetryDelays: []time.Duration{50 * time.Millisecond}}, func(b *eventbus.Bus) {
		if err := eventbus.HandleTx(b, db, widgetMade, func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[widget]) error {
			runs.Add(1)
			if _, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, n) VALUES (?, ?)`, ev.Entity.ID, ev.Entity.N); err != nil {
				return err
			}
			var err error
			failOnce.Do(func() { err = errors.New("fails after writing: must roll back, inbox included") })
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
	pub := publisherBus(t, url)
	ctx := context.Background()
	m := mustMessage(t, ctx, widgetMade, newWidget(5))
	// The same event three times: at-least-once delivery at its worst.
	for range 3 {
		if err := pub.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the event handled and duplicates skipped", func() bool {
		s := consumer.Stats()
		return s.Handled == 3 && s.Duplicates == 2
	})
	if n := countRows(t, db, `SELECT COUNT(*) FROM widgets`); n != 1 {
		t.Errorf("%d widgets, want 1", n)
	}
	if n := countRows(t, db, `SELECT COUNT(*) FROM eventbus_inbox WHERE uuid = ?`, m.ID); n != 1 {
		t.Errorf("inbox has %d rows for the event", n)
	}
	// 1 failed run (rolled back) + 1 successful run; duplicates never ran.
	if got := runs.Load(); got != 2 {
		t.Errorf("handler ran %d times, want 2 (one failure, one success)", got)
	}
}

func TestEventsEnqueuedByAHandlerAreRelayedOnCommit(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := migratedDB(t)
	tp := newTap(t, url, "test.external-observer")
	inspected := eventbus.MustEventType[widget]("test.consumer", "widget_inspected", "widget")
	consumer := startBus(t, eventbus.Config{URL: url, Service: "test.consumer"}, func(b *eventbus.Bus) {
		if err := b.Publishes(inspected); err != nil {
			t.Fatal(err)
		}
		if err := eventbus.HandleTx(b, db, widgetMade, func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[widget]) error {
			m, err := inspected.New(ctx, ev.Entity)
			if err != nil {
				return err
			}
			return eventbus.Enqueue(ctx, tx, m)
		}); err != nil {
			t.Fatal(err)
		}
	})
	// A long poll interval: only the after-commit notification can make this fast.
	startRelay(t, db, consumer, eventbus.RelayConfig{PollInterval: time.Hour})
	pub := publisherBus(t, url)
	ctx := context.Background()
	in := mustMessage(t, ctx, widgetMade, newWidget(3))
	if err := pub.Publish(ctx, in); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the follow-up event", func() bool { return tp.count() == 2 })
	var follow bool
	for _, d := range tp.all() {
		if d.Type == "test.consumer.widget_inspected" {
			follow = true
			if d.Headers["causation_id"] != in.ID {
				t.Errorf("causation_id = %v, want %s", d.Headers["causation_id"], in.ID)
			}
			if d.AppId != "test.consumer" {
				t.Errorf("app_id = %q", d.AppId)
			}
		}
	}
	if !follow {
		t.Error("follow-up event not published")
	}
}

// TestCommitsNeverDeadlockWithARelay commits changes with events from many
// goroutines while a relay claims rows as fast as it can: a service's
// transaction must never fail because of the relay's locks.
func TestCommitsNeverDeadlockWithARelay(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := migratedDB(t)
	db.SetMaxOpenConns(16)
	b := publisherBus(t, url)
	r := startRelay(t, db, b, eventbus.RelayConfig{BatchSize: 20, PollInterval: time.Millisecond})
	const writers, each = 8, 60
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := makeWidget(context.Background(), db, newWidget(w*1000+i), false); err != nil {
					errs <- err
				}
				r.Notify()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a service's commit failed while the relay ran: %v", err)
	}
	waitFor(t, 20*time.Second, "every row published", func() bool {
		return countRows(t, db, `SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL`) == 0
	})
}

// A relay publishes the rows in the order they were enqueued, batch after
// batch, each once, and marks them sent.
func TestOneRelayPublishesInOutboxOrder(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := migratedDB(t)
	tp := newTap(t, url, "test.external-observer")
	ctx := context.Background()
	const rows = 1500
	var want []string
	for i := 0; i < rows; i += 100 {
		tx := db.MustBeginTx(ctx, nil)
		var msgs []eventbus.Message
		for j := i; j < i+100; j++ {
			m := mustMessage(t, ctx, widgetMade, newWidget(j))
			msgs = append(msgs, m)
			want = append(want, m.ID)
		}
		if err := eventbus.Enqueue(ctx, tx, msgs...); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	r := startRelay(t, db, publisherBus(t, url), eventbus.RelayConfig{BatchSize: 7, PollInterval: 10 * time.Millisecond})
	waitFor(t, 60*time.Second, "every row published and marked sent", func() bool {
		return tp.count() >= rows && r.Stats().Sent >= rows
	})
	time.Sleep(300 * time.Millisecond) // let any wrong second publication arrive
	got := tp.all()
	if len(got) != rows {
		t.Fatalf("tap received %d messages, want %d", len(got), rows)
	}
	for i, d := range got {
		if d.MessageId != want[i] {
			t.Fatalf("message %d is %s, want %s: the relay published out of enqueue order", i, d.MessageId, want[i])
		}
	}
	if n := countRows(t, db, `SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL`); n != 0 {
		t.Errorf("%d rows still pending", n)
	}
	if s := r.Stats(); s.Sent != rows || s.Failed != 0 {
		t.Errorf("stats %+v, want %d sent, 0 failed", s, rows)
	}
}

// TestMigrateAddsTheTraceColumn: a table created before the traceparent
// column existed gets it, and Enqueue then works.
func TestMigrateAddsTheTraceColumn(t *testing.T) {
	db := testinfra.NewDatabase(t)
	if _, err := db.Exec(`CREATE TABLE eventbus_outbox (
		id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, uuid CHAR(36) NOT NULL, type VARCHAR(255) NOT NULL,
		app_id VARCHAR(255) NOT NULL, fired_at DATETIME(3) NOT NULL, headers TEXT NOT NULL, body MEDIUMBLOB NOT NULL,
		created_at DATETIME(6) NOT NULL, available_at DATETIME(6) NOT NULL, attempts INT UNSIGNED NOT NULL DEFAULT 0,
		last_error TEXT NULL, sent_at DATETIME(6) NULL, UNIQUE KEY eventbus_outbox_uuid (uuid),
		KEY eventbus_outbox_pending (sent_at, available_at, id))`); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := eventbus.Migrate(context.Background(), db); err != nil {
			t.Fatal(err)
		}
	}
	ctx := eventbus.WithTraceparent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	tx := db.MustBegin()
	if err := eventbus.Enqueue(ctx, tx, mustMessage(t, ctx, widgetMade, newWidget(1))); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var stored sql.NullString
	if err := db.Get(&stored, `SELECT traceparent FROM eventbus_outbox`); err != nil {
		t.Fatal(err)
	}
	// Without tracing (no span in ctx) the row keeps no trace context: the
	// message's own traceparent header is published as it is.
	if stored.Valid {
		t.Errorf("traceparent %q stored without a span in the context", stored.String)
	}
}
