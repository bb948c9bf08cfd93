package eventbus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
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
	if n := countRows(t, pubDB, `SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL`); n != 0 {
		t.Errorf("%d outbox rows never published", n)
	}
	if got := handled.Load(); got != total {
		t.Errorf("handler committed %d times for %d events", got, total)
	}
	s := consumer.Stats()
	t.Logf("consumer: %+v; publisher reconnects %d; relay %+v", s, pub.Stats().Reconnects, relay.Stats())
	if pub.Stats().Reconnects < 2 || s.Reconnects < 2 {
		t.Errorf("expected at least 2 reconnects each, got publisher %d consumer %d", pub.Stats().Reconnects, s.Reconnects)
	}
}
