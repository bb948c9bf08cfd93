package eventbus_test

import (
	"context"
	"errors"
	neturl "net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/platform"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// TestBrokerKilledMidStreamLosesNothing kills a real RabbitMQ node with
// SIGKILL twice while a service commits changes and another consumes them:
// publisher, relay and consumer must recover, and every committed event must
// be handled exactly once.
func TestBrokerKilledMidStreamLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills its own RabbitMQ node")
	}
	url, node := testinfra.StartRabbitNode(t)
	pubDB := migratedDB(t)
	conDB := migratedDB(t)

	fast := eventbus.Config{ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second, RetryDelays: []time.Duration{200 * time.Millisecond}}

	var handled atomic.Int32
	conCfg := fast
	conCfg.URL, conCfg.Service = url, "test.consumer"
	consumer := startBus(t, conCfg, func(b *eventbus.Bus) {
		if err := eventbus.HandleTx(b, conDB, widgetMade, func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[widget]) error {
			handled.Add(1)
			_, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, n) VALUES (?, ?)`, ev.Entity.ID, ev.Entity.N)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
	pubCfg := fast
	pubCfg.URL, pubCfg.Service = url, "test.widgets"
	pub := startBus(t, pubCfg, func(b *eventbus.Bus) {
		if err := b.Publishes(widgetMade); err != nil {
			t.Fatal(err)
		}
	})
	relay := startRelay(t, pubDB, pub, eventbus.RelayConfig{PollInterval: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})

	const total = 600
	ctx := context.Background()
	for i := range total {
		if err := makeWidget(ctx, pubDB, newWidget(i), false); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		relay.Notify()
		switch i {
		case 150, 400:
			t.Logf("killing the broker after %d commits (handled so far: %d)", i+1, handled.Load())
			node.Kill()
			// The service keeps committing while the broker is gone: its
			// events wait in the outbox.
			for j := 0; j < 20; j++ {
				time.Sleep(10 * time.Millisecond)
			}
			if err := pub.Healthy(); !errors.Is(err, eventbus.ErrNotConnected) {
				t.Logf("bus still reports healthy right after the kill: %v", err)
			}
			node.Restart(t)
		}
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, 120*time.Second, "every committed event handled", func() bool {
		return countRows(t, conDB, `SELECT COUNT(*) FROM widgets`) == total
	})
	// A consumer may handle the last events before the relay's batch that
	// marks them sent commits: wait for the marks too.
	waitFor(t, 30*time.Second, "every outbox row marked sent", func() bool {
		return countRows(t, pubDB, `SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL`) == 0
	})
	if got := handled.Load(); got != total {
		t.Errorf("handler committed %d times for %d events", got, total)
	}
	s := consumer.Stats()
	t.Logf("consumer: %+v; publisher reconnects %d; relay %+v", s, pub.Stats().Reconnects, relay.Stats())
	if pub.Stats().Reconnects < 2 || s.Reconnects < 2 {
		t.Errorf("expected at least 2 reconnects each, got publisher %d consumer %d", pub.Stats().Reconnects, s.Reconnects)
	}
}

// TestDatabaseOutageDoesNotDeadLetter cuts the link between a consumer and
// its database for much longer than its retries last: the events it could
// not handle meanwhile must not be dead-lettered (the outage is not theirs),
// and must be handled, once each, when the database answers again.
func TestDatabaseOutageDoesNotDeadLetter(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	dsn := testinfra.NewDatabaseDSN(t)
	direct := testinfra.OpenDatabase(t, dsn)
	if err := eventbus.Migrate(context.Background(), direct); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Exec(`CREATE TABLE widgets (id VARCHAR(64) PRIMARY KEY, n INT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	// The consumer reaches the database through a proxy the test cuts.
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	px, err := platform.NewProxy("127.0.0.1:0", cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	cfg.Addr = px.Addr()
	viaProxy := testinfra.OpenDatabase(t, cfg.FormatDSN())

	var handled atomic.Int32
	consumer := startBus(t, eventbus.Config{URL: url, Service: "test.consumer", MaxAttempts: 3,
		RetryDelays: []time.Duration{50 * time.Millisecond}}, func(b *eventbus.Bus) {
		if err := eventbus.HandleTx(b, viaProxy, widgetMade, func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[widget]) error {
			handled.Add(1)
			_, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, n) VALUES (?, ?)`, ev.Entity.ID, ev.Entity.N)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
	pub := publisherBus(t, url)

	px.Set(platform.Cut)
	ctx := context.Background()
	for i := range 5 {
		if err := pub.Publish(ctx, mustMessage(t, ctx, widgetMade, newWidget(i))); err != nil {
			t.Fatal(err)
		}
	}
	// Three attempts take about 100 ms: wait for many more.
	time.Sleep(2 * time.Second)
	if n := queueDepth(t, url, "test.consumer.dead-letter"); n != 0 {
		t.Fatalf("%d events dead-lettered while the database was unreachable (stats %+v)", n, consumer.Stats())
	}
	if s := consumer.Stats(); s.Retried < 10 {
		t.Fatalf("the handlers did not fail while the database was unreachable: %+v", s)
	}
	px.Restore()
	waitFor(t, 20*time.Second, "every event handled once the database is back", func() bool {
		return countRows(t, direct, `SELECT COUNT(*) FROM widgets`) == 5
	})
	if n := queueDepth(t, url, "test.consumer.dead-letter"); n != 0 {
		t.Errorf("%d events dead-lettered", n)
	}
	if n := handled.Load(); n != 5 {
		t.Errorf("the handler ran %d times for 5 events (it only runs once the transaction has begun)", n)
	}
}

// TestRelayDoesNotBlockTheServiceWhilePublishing makes the relay wait for
// confirms that cannot come (its link to the broker black-holed): meanwhile
// the service's own transactions, which enqueue events into the same outbox,
// must commit at once instead of waiting for the relay's batch to end.
func TestRelayDoesNotBlockTheServiceWhilePublishing(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
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
	db := migratedDB(t)
	pub := publisherBus(t, u.String())
	ctx := context.Background()
	// An outbox as it looks in production: sent rows (kept for a day), and
	// some waiting.
	for i := range 300 {
		if err := makeWidget(ctx, db, newWidget(i), false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`UPDATE eventbus_outbox SET sent_at = ? ORDER BY id LIMIT 250`, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}

	px.Set(platform.Blackhole)
	relay := startRelay(t, db, pub, eventbus.RelayConfig{PollInterval: 20 * time.Millisecond, PublishTimeout: 3 * time.Second})
	time.Sleep(500 * time.Millisecond) // the relay has claimed the rows and waits for their confirms
	start := time.Now()
	if err := makeWidget(ctx, db, newWidget(1000), false); err != nil {
		t.Fatalf("a service transaction while the relay publishes: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a service transaction waited %v for the relay's batch", d.Round(time.Millisecond))
	}

	px.Restore()
	waitFor(t, 60*time.Second, "every row published once the link is back", func() bool {
		relay.Notify()
		return countRows(t, db, `SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL`) == 0
	})
}
