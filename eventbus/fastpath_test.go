package eventbus_test

import (
	"bufio"
	"context"
	"fmt"
	neturl "net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/platform"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// crashCfg is a relay configuration with a short grace, so that the sweep
// of rows the fast path left behind comes within a test's patience.
func crashCfg(hook eventbus.FastPathHook) eventbus.RelayConfig {
	return eventbus.RelayConfig{PollInterval: 100 * time.Millisecond, FastPathGrace: time.Second,
		FastPathTimeout: 500 * time.Millisecond, FastPathHook: hook}
}

// makeWidgetInTx is a store method of a service's REST API: the change and
// its event in one mysqldb.InTx transaction, as the services write them.
func makeWidgetInTx(ctx context.Context, db *sqlx.DB, w widget) (eventbus.Message, error) {
	m, err := widgetMade.New(ctx, w)
	if err != nil {
		return m, err
	}
	return m, mysqldb.InTx(ctx, db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, n) VALUES (?, ?)`, w.ID, w.N); err != nil {
			return err
		}
		return eventbus.Enqueue(ctx, tx, m)
	})
}

// ids returns the message ids tp received, in order.
func (tp *tap) ids() []string {
	var out []string
	for _, d := range tp.all() {
		out = append(out, d.MessageId)
	}
	return out
}

func TestFastPathPublishesRightAfterCommitWithoutTheRelaysSweep(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := migratedDB(t)
	tp := newTap(t, url, "test.external-observer")
	// The relay polls once an hour and nobody calls Notify: only the fast
	// path can publish within the test.
	r := startRelay(t, db, publisherBus(t, url), eventbus.RelayConfig{PollInterval: time.Hour})
	time.Sleep(100 * time.Millisecond) // Run registers the relay as it starts
	ctx := context.Background()
	const n = 20
	var want []string
	for i := range n {
		m, err := makeWidgetInTx(ctx, db, newWidget(i))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, m.ID)
	}
	waitFor(t, 5*time.Second, "every event published and marked sent", func() bool {
		return tp.count() >= n && countRows(t, db, `SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL`) == 0
	})
	time.Sleep(200 * time.Millisecond)
	// Events of one aggregate committed one after the other are published in
	// commit order.
	if got := tp.ids(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("published %v, want %v in commit order", got, want)
	}
	if s := r.Stats(); s.FastPublished != n || s.FastMarked != n || s.Sent != 0 || s.FastReleased != 0 {
		t.Errorf("stats %+v, want %d published and marked by the fast path, none by the sweep", s, n)
	}
}

// TestFastPathAndSweepNeverPublishTheSameRowTwice commits from many
// goroutines while a relay sweeps every millisecond: without faults, each
// event is published exactly once.
func TestFastPathAndSweepNeverPublishTheSameRowTwice(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := migratedDB(t)
	db.SetMaxOpenConns(16)
	tp := newTap(t, url, "test.external-observer")
	b := publisherBus(t, url)
	r := startRelay(t, db, b, eventbus.RelayConfig{BatchSize: 20, PollInterval: time.Millisecond})
	time.Sleep(100 * time.Millisecond)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := makeWidgetInTx(context.Background(), db, newWidget(w*1000+i)); err != nil {
					errs <- err
				}
				r.Notify()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("commit: %v", err)
	}
	waitFor(t, 20*time.Second, "every row published and marked", func() bool {
		return tp.count() >= writers*each && countRows(t, db, `SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL`) == 0
	})
	time.Sleep(300 * time.Millisecond)
	seen := map[string]int{}
	for _, id := range tp.ids() {
		seen[id]++
	}
	for id, c := range seen {
		if c > 1 {
			t.Errorf("event %s published %d times", id, c)
		}
	}
	if len(seen) != writers*each || tp.count() != writers*each {
		t.Errorf("%d distinct events in %d messages, want %d", len(seen), tp.count(), writers*each)
	}
	t.Logf("relay %+v", r.Stats())
}

// TestCrashBetweenCommitAndPublishTheRelayPublishes stops the fast path
// right after the commit, as a crash there would: the row must be published
// by the relay's sweep once the grace has passed, exactly once.
func TestCrashBetweenCommitAndPublishTheRelayPublishes(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := migratedDB(t)
	tp := newTap(t, url, "test.external-observer")
	r := startRelay(t, db, publisherBus(t, url), crashCfg(func(stage eventbus.FastPathStage, _ []eventbus.Message) bool {
		return stage != eventbus.StageCommitted
	}))
	time.Sleep(100 * time.Millisecond)
	committed := time.Now()
	m, err := makeWidgetInTx(context.Background(), db, newWidget(1))
	if err != nil {
		t.Fatal(err)
	}
	r.Notify()
	time.Sleep(300 * time.Millisecond)
	if tp.count() != 0 {
		t.Fatalf("published %d messages before the grace passed: the sweep raced the fast path", tp.count())
	}
	waitFor(t, 10*time.Second, "the relay's sweep", func() bool { return tp.count() == 1 })
	if since := time.Since(committed); since < time.Second {
		t.Errorf("swept after %v, before the grace (1s)", since)
	}
	time.Sleep(300 * time.Millisecond)
	if got := tp.ids(); len(got) != 1 || got[0] != m.ID {
		t.Errorf("published %v, want [%s]", got, m.ID)
	}
	if s := r.Stats(); s.Sent != 1 || s.FastPublished != 0 {
		t.Errorf("stats %+v, want 1 sent by the sweep, none by the fast path", s)
	}
}

// TestCrashBetweenPublishAndMarkIsAbsorbedByTheInbox stops the fast path
// after the broker confirmed the event but before the row is marked sent:
// the sweep publishes it a second time (at least once, at most twice), and
// the consumer's inbox runs its handler once.
func TestCrashBetweenPublishAndMarkIsAbsorbedByTheInbox(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	pubDB := migratedDB(t)
	conDB := migratedDB(t)
	tp := newTap(t, url, "test.external-observer")
	var handled atomic.Int32
	consumer := startBus(t, eventbus.Config{URL: url, Service: "test.consumer"}, func(b *eventbus.Bus) {
		if err := eventbus.HandleTx(b, conDB, widgetMade, func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[widget]) error {
			handled.Add(1)
			_, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, n) VALUES (?, ?)`, ev.Entity.ID, ev.Entity.N)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
	r := startRelay(t, pubDB, publisherBus(t, url), crashCfg(func(stage eventbus.FastPathStage, _ []eventbus.Message) bool {
		return stage != eventbus.StageConfirmed
	}))
	time.Sleep(100 * time.Millisecond)
	m, err := makeWidgetInTx(context.Background(), pubDB, newWidget(1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the fast path's publish and the sweep's", func() bool { return tp.count() == 2 })
	waitFor(t, 10*time.Second, "the consumer saw both", func() bool { return consumer.Stats().Duplicates == 1 })
	time.Sleep(300 * time.Millisecond)
	if got := tp.ids(); len(got) != 2 || got[0] != m.ID || got[1] != m.ID {
		t.Errorf("published %v, want %s twice", got, m.ID)
	}
	if h := handled.Load(); h != 1 {
		t.Errorf("handler ran %d times, want 1", h)
	}
	if n := countRows(t, conDB, `SELECT COUNT(*) FROM widgets`); n != 1 {
		t.Errorf("%d effects, want 1", n)
	}
	if s := r.Stats(); s.FastPublished != 1 || s.Sent != 1 || s.FastMarked != 0 {
		t.Errorf("stats %+v, want 1 published by the fast path (unmarked) and 1 by the sweep", s)
	}
}

// TestBrokerAwayAtCommitTheRequestSucceedsAndTheRelayPublishesLater cuts the
// link to the broker: a commit with an event must still return at once, and
// the relay must publish the event once the link is back.
func TestBrokerAwayAtCommitTheRequestSucceedsAndTheRelayPublishesLater(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := migratedDB(t)
	tp := newTap(t, url, "test.external-observer")
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	px, err := platform.NewProxy("127.0.0.1:0", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	u.Host = px.Addr()
	b := startBus(t, eventbus.Config{URL: u.String(), Service: "test.widgets", ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond},
		func(b *eventbus.Bus) {
			if err := b.Publishes(widgetMade); err != nil {
				t.Fatal(err)
			}
		})
	r := startRelay(t, db, b, eventbus.RelayConfig{PollInterval: 100 * time.Millisecond, FastPathGrace: time.Minute})
	time.Sleep(100 * time.Millisecond)

	px.Set(platform.Cut)
	waitFor(t, 10*time.Second, "the bus noticed", func() bool { return b.Healthy() != nil })
	start := time.Now()
	m, err := makeWidgetInTx(context.Background(), db, newWidget(1))
	if err != nil {
		t.Fatalf("commit while the broker is away: %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("the commit took %v while the broker was away", d)
	}
	waitFor(t, 5*time.Second, "the row handed back to the relay", func() bool { return r.Stats().FastReleased == 1 })
	time.Sleep(300 * time.Millisecond)
	if tp.count() != 0 {
		t.Fatalf("published while the link was cut?")
	}
	px.Restore()
	// The grace is a minute: only the release makes this fast.
	waitFor(t, 10*time.Second, "the relay published after the broker came back", func() bool { return tp.count() == 1 })
	time.Sleep(300 * time.Millisecond)
	if got := tp.ids(); len(got) != 1 || got[0] != m.ID {
		t.Errorf("published %v, want [%s]", got, m.ID)
	}
	if s := r.Stats(); s.Sent != 1 {
		t.Errorf("stats %+v, want 1 sent by the relay", s)
	}
}

// The SIGKILL tests run a child process (this test binary again, running
// TestFastPathChildProcess) that commits one event through the fast path and
// stops at a stage; the parent kills it with SIGKILL there, then runs a
// relay of its own on the same database, as a restarted instance would.

const childEnv = "EVENTBUS_FASTPATH_CHILD" // stage,amqp url,dsn

// TestFastPathChildProcess is the child of the SIGKILL tests; it is skipped
// unless the parent started it.
func TestFastPathChildProcess(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("run by the SIGKILL tests only")
	}
	stage, rest, _ := strings.Cut(spec, ",")
	url, dsn, _ := strings.Cut(rest, ",")
	db := testinfra.OpenDatabase(t, dsn)
	b := startBus(t, eventbus.Config{URL: url, Service: "test.widgets"}, func(b *eventbus.Bus) {
		if err := b.Publishes(widgetMade); err != nil {
			t.Fatal(err)
		}
	})
	startRelay(t, db, b, crashCfg(func(s eventbus.FastPathStage, msgs []eventbus.Message) bool {
		if string(s) != stage {
			return true
		}
		fmt.Printf("STOPPED %s %s\n", s, msgs[0].ID)
		select {} // wait for SIGKILL
	}))
	time.Sleep(100 * time.Millisecond)
	if _, err := makeWidgetInTx(context.Background(), db, newWidget(1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Minute)
	t.Fatal("not killed")
}

// killChildAt starts the child, waits until it stops at stage, kills it
// with SIGKILL and returns the id of the event it committed.
func killChildAt(t *testing.T, stage eventbus.FastPathStage, url, dsn string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFastPathChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+string(stage)+","+url+","+dsn)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "STOPPED ") {
				lines <- sc.Text()
			}
		}
		close(lines)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("child did not reach the stage")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	f := strings.Fields(line)
	if len(f) != 3 || f[1] != string(stage) {
		t.Fatalf("child said %q", line)
	}
	return f[2]
}

func TestSIGKILLBetweenCommitAndPublishTheNextRelayPublishes(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	dsn := testinfra.NewDatabaseDSN(t)
	db := testinfra.OpenDatabase(t, dsn)
	if err := eventbus.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE widgets (id VARCHAR(64) PRIMARY KEY, n INT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	tp := newTap(t, url, "test.external-observer")
	id := killChildAt(t, eventbus.StageCommitted, url, dsn)
	if n := countRows(t, db, `SELECT COUNT(*) FROM widgets`); n != 1 {
		t.Fatalf("the child committed %d changes, want 1", n)
	}
	time.Sleep(200 * time.Millisecond)
	if tp.count() != 0 {
		t.Fatalf("the killed child published %d messages", tp.count())
	}
	r := startRelay(t, db, publisherBus(t, url), eventbus.RelayConfig{PollInterval: 100 * time.Millisecond})
	waitFor(t, 10*time.Second, "the restarted relay published the committed event", func() bool { return tp.count() == 1 })
	time.Sleep(300 * time.Millisecond)
	if got := tp.ids(); len(got) != 1 || got[0] != id {
		t.Errorf("published %v, want [%s]", got, id)
	}
	if s := r.Stats(); s.Sent != 1 {
		t.Errorf("relay %+v, want 1 sent", s)
	}
}

func TestSIGKILLBetweenPublishAndMarkPublishesTwiceAtMost(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	dsn := testinfra.NewDatabaseDSN(t)
	db := testinfra.OpenDatabase(t, dsn)
	if err := eventbus.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE widgets (id VARCHAR(64) PRIMARY KEY, n INT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	conDB := migratedDB(t)
	tp := newTap(t, url, "test.external-observer")
	var handled atomic.Int32
	startBus(t, eventbus.Config{URL: url, Service: "test.consumer"}, func(b *eventbus.Bus) {
		if err := eventbus.HandleTx(b, conDB, widgetMade, func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[widget]) error {
			handled.Add(1)
			_, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, n) VALUES (?, ?)`, ev.Entity.ID, ev.Entity.N)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
	id := killChildAt(t, eventbus.StageConfirmed, url, dsn)
	waitFor(t, 5*time.Second, "the child's confirmed publish", func() bool { return tp.count() == 1 })
	startRelay(t, db, publisherBus(t, url), eventbus.RelayConfig{PollInterval: 100 * time.Millisecond})
	waitFor(t, 10*time.Second, "the restarted relay's second publish", func() bool { return tp.count() == 2 })
	waitFor(t, 10*time.Second, "the row marked sent", func() bool {
		return countRows(t, db, `SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL`) == 0
	})
	time.Sleep(500 * time.Millisecond)
	if got := tp.ids(); len(got) != 2 || got[0] != id || got[1] != id {
		t.Errorf("published %v, want %s twice", got, id)
	}
	if h := handled.Load(); h != 1 {
		t.Errorf("handler ran %d times, want 1: the inbox must absorb the second copy", h)
	}
}

// A transaction the fast path does not track (committed by code of its
// own) is still published at once by the relay when Notify follows its
// commit, also while the relay's fast path is on.
func TestUntrackedCommitsStillWakeTheRelay(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := migratedDB(t)
	tp := newTap(t, url, "test.external-observer")
	r := startRelay(t, db, publisherBus(t, url), eventbus.RelayConfig{PollInterval: time.Hour})
	time.Sleep(100 * time.Millisecond)
	if _, err := makeWidgetInTx(context.Background(), db, newWidget(1)); err != nil {
		t.Fatal(err)
	}
	r.Notify() // after a tracked commit: nothing for the relay to do
	if err := makeWidget(context.Background(), db, newWidget(2), false); err != nil {
		t.Fatal(err)
	}
	r.Notify()
	waitFor(t, 5*time.Second, "both events", func() bool { return tp.count() == 2 })
	if s := r.Stats(); s.Sent != 1 || s.FastPublished != 1 {
		t.Errorf("stats %+v, want 1 by the fast path and 1 by the relay", s)
	}
}
