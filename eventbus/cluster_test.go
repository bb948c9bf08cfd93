package eventbus_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

func TestConfigAcceptsSeveralNodeURLs(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"amqp://u:p@127.0.0.1:5672/v", true},
		{"amqp://u:p@127.0.0.1:5672/v,amqp://u:p@127.0.0.1:5673/v", true},
		{"amqp://u:p@h1:5672/v, amqps://u:p@h2:5671/v ,amqp://u:p@h3/v", true},
		{"amqp://u:p@h1:5672/v,", false},
		{"amqp://u:p@h1:5672/v,http://h2/", false},
		{"h1:5672", false},
	} {
		_, err := eventbus.New(eventbus.Config{URL: tc.url, Service: "test.consumer"})
		if (err == nil) != tc.ok {
			t.Errorf("URL %q: err %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}

// TestANackedPublishRenewsThePublishingChannel makes the broker nack every
// publish (a queue bound to sagittarius-a that rejects what exceeds a length
// of 0): the bus reports ErrNotConfirmed and publishes on a new channel, and
// publishing works again once the cause is gone.
func TestANackedPublishRenewsThePublishingChannel(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	pub := publisherBus(t, url)
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("test.full", true, false, false, false, amqp.Table{"x-max-length": int64(0), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("test.full", "", eventbus.Exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = pub.Publish(ctx, mustMessage(t, ctx, widgetMade, newWidget(1)))
	if !errors.Is(err, eventbus.ErrNotConfirmed) {
		t.Fatalf("publish into a full reject-publish queue: %v, want ErrNotConfirmed", err)
	}
	waitFor(t, 10*time.Second, "a new publishing channel", func() bool { return pub.Stats().PubRenewals == 1 })
	if _, err := ch.QueueDelete("test.full", false, false, false); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, mustMessage(t, ctx, widgetMade, newWidget(2))); err != nil {
		t.Fatalf("publish on the new channel: %v", err)
	}
	if s := pub.Stats(); s.Reconnects != 0 {
		t.Errorf("a nack cost the connection: %+v", s)
	}
}

// clusterStream is a steady stream of committed widgets through an outbox,
// relay and publisher bus, to a consumer bus whose HandleTx handler records
// when it commits each event (the inbox absorbs redeliveries).
type clusterStream struct {
	pubDB, conDB *sqlx.DB
	pub, con     *eventbus.Bus
	relay        *eventbus.Relay

	handled   atomic.Int32 // handler commits (a handler whose transaction rolls back counts too: it must not happen)
	mu        sync.Mutex
	handledAt []time.Time // when each handler ran, in order

	committed atomic.Int32
	stop      chan struct{}
	done      chan struct{}
}

// startClusterStream starts the consumer bus first, so that it declares its
// quorum queue and so the queue's leader is the node it is connected to.
func startClusterStream(t *testing.T, url string) *clusterStream {
	t.Helper()
	s := &clusterStream{pubDB: migratedDB(t), conDB: migratedDB(t), stop: make(chan struct{}), done: make(chan struct{})}
	fast := eventbus.Config{URL: url, QueueType: eventbus.QueueQuorum, ReconnectMin: 100 * time.Millisecond,
		ReconnectMax: time.Second, RetryDelays: []time.Duration{200 * time.Millisecond}, Logger: clusterLogger()}
	conCfg := fast
	conCfg.Service = "test.consumer"
	s.con = startBus(t, conCfg, func(b *eventbus.Bus) {
		if err := eventbus.HandleTx(b, s.conDB, widgetMade, func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[widget]) error {
			s.handled.Add(1)
			s.mu.Lock()
			s.handledAt = append(s.handledAt, time.Now())
			s.mu.Unlock()
			_, err := tx.ExecContext(ctx, `INSERT INTO widgets (id, n) VALUES (?, ?)`, ev.Entity.ID, ev.Entity.N)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
	pubCfg := fast
	pubCfg.Service = "test.widgets"
	s.pub = startBus(t, pubCfg, func(b *eventbus.Bus) {
		if err := b.Publishes(widgetMade); err != nil {
			t.Fatal(err)
		}
	})
	s.relay = startRelay(t, s.pubDB, s.pub, eventbus.RelayConfig{PollInterval: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, Logger: clusterLogger()})
	go func() {
		defer close(s.done)
		ctx := context.Background()
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if err := makeWidget(ctx, s.pubDB, newWidget(i), false); err != nil {
				t.Errorf("commit %d: %v", i, err)
				return
			}
			s.committed.Add(1)
			s.relay.Notify()
		}
	}()
	t.Cleanup(s.halt)
	return s
}

func (s *clusterStream) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// clusterLogger shows the buses' connection logs on stderr (warnings and
// errors: reconnects, cancellations) when the test runs verbosely.
func clusterLogger() *slog.Logger {
	if !testing.Verbose() {
		return quietLogger()
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// waitHandled waits until the consumer handled n more events than it had;
// on timeout it fails the test with the state of the queues and buses.
func (s *clusterStream) waitHandled(t *testing.T, c *testinfra.RabbitCluster, n int32, d time.Duration) {
	t.Helper()
	target := s.handled.Load() + n
	deadline := time.Now().Add(d)
	for s.handled.Load() < target {
		if time.Now().After(deadline) {
			for _, q := range []string{"test.consumer", "test.widgets"} {
				t.Logf("queue %s: %+v", q, c.Queue("/", q))
			}
			t.Fatalf("timed out after %v waiting for events handled (%d of %d committed); consumer %+v on %s; publisher %+v on %s; relay %+v",
				d, s.handled.Load(), s.committed.Load(), s.con.Stats(), c.ConnectionNode("test.consumer"),
				s.pub.Stats(), c.ConnectionNode("test.widgets"), s.relay.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gap returns the longest time between two consecutive handler runs from
// since on: how long consumption stopped.
func (s *clusterStream) gap(since time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var longest time.Duration
	prev := since
	for _, at := range s.handledAt {
		if at.Before(since) {
			continue
		}
		longest = max(longest, at.Sub(prev))
		prev = at
	}
	return longest
}

// finish stops the stream and checks that every committed event was handled
// exactly once.
func (s *clusterStream) finish(t *testing.T) {
	t.Helper()
	s.halt()
	total := int(s.committed.Load())
	waitFor(t, 120*time.Second, "every committed event handled", func() bool {
		s.relay.Notify()
		return countRows(t, s.conDB, `SELECT COUNT(*) FROM widgets`) == total
	})
	if n := countRows(t, s.pubDB, `SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL`); n != 0 {
		t.Errorf("%d outbox rows never published", n)
	}
	if got := int(s.handled.Load()); got != total {
		t.Errorf("handler committed %d times for %d events", got, total)
	}
	t.Logf("%d events committed and handled once each; consumer %+v; publisher %+v; relay %+v",
		total, s.con.Stats(), s.pub.Stats(), s.relay.Stats())
}

// TestClusterKeepsConsumingThroughNodeFailures runs a stream of events
// through a real three-node cluster with quorum queues while nodes die: the
// node the consumer is connected to (which leads its queue) is SIGKILLed,
// then the publisher's, then the leader of the queue is stopped gracefully;
// the buses move to surviving nodes, every committed event is handled exactly
// once, and the longest pause in consumption is logged after each fault.
func TestClusterKeepsConsumingThroughNodeFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node RabbitMQ cluster")
	}
	c := testinfra.StartRabbitCluster(t, 3)
	s := startClusterStream(t, c.URL())
	s.waitHandled(t, c, 100, 60*time.Second)

	// Every queue of the platform is a quorum queue with a replica on each node.
	for _, q := range []string{"test.consumer", "test.consumer.retry.200", "test.consumer.dead-letter",
		"test.widgets", "test.widgets.retry.200", "test.widgets.dead-letter"} {
		info := c.Queue("/", q)
		members := slices.Sorted(slices.Values(info.Members))
		want := []string{c.Nodes[0].Name, c.Nodes[1].Name, c.Nodes[2].Name}
		slices.Sort(want)
		if info.Type != "quorum" || !slices.Equal(members, want) {
			t.Errorf("queue %s: type %q, members %v; want quorum on %v", q, info.Type, members, want)
		}
	}

	kill := func(what, name string) {
		t.Helper()
		n := c.Node(name)
		if n == nil {
			t.Fatalf("%s: no node named %q", what, name)
		}
		s.waitHandled(t, c, 50, 60*time.Second)
		reconnects := s.con.Stats().Reconnects + s.pub.Stats().Reconnects
		t.Logf("SIGKILL %s %s (handled so far %d)", what, name, s.handled.Load())
		at := time.Now()
		n.Kill()
		s.waitHandled(t, c, 200, 90*time.Second)
		t.Logf("after SIGKILL of %s: consumption paused at most %v; buses reconnected %d times; consumer now on %s, publisher on %s",
			what, s.gap(at).Round(time.Millisecond), s.con.Stats().Reconnects+s.pub.Stats().Reconnects-reconnects,
			c.ConnectionNode("test.consumer"), c.ConnectionNode("test.widgets"))
		n.Restart(t)
		c.WaitFormed(nodeWait)
		waitReplicasOnline(t, c)
	}

	conNode := c.ConnectionNode("test.consumer")
	if leader := c.Queue("/", "test.consumer").Leader; leader != conNode {
		t.Logf("the consumer is on %s but its queue's leader is %s", conNode, leader)
	}
	kill("the consumer's node (the leader of its queue)", conNode)
	if got := c.ConnectionNode("test.consumer"); got == conNode {
		t.Errorf("the consumer is back on the node that was killed")
	}
	kill("the publisher's node", c.ConnectionNode("test.widgets"))

	// A graceful stop of the queue leader (maintenance): its clients receive
	// connection.close, its queues elect new leaders.
	leader := c.Node(c.Queue("/", "test.consumer").Leader)
	s.waitHandled(t, c, 50, 60*time.Second)
	at := time.Now()
	c.Ctl(leader, "stop_app")
	s.waitHandled(t, c, 200, 90*time.Second)
	t.Logf("after stop_app of the leader %s: consumption paused at most %v; new leader %s",
		leader.Name, s.gap(at).Round(time.Millisecond), c.Queue("/", "test.consumer").Leader)
	c.Ctl(leader, "start_app")
	c.WaitFormed(nodeWait)
	waitReplicasOnline(t, c)

	s.finish(t)
	if r := s.con.Stats().Reconnects + s.pub.Stats().Reconnects; r < 2 {
		t.Errorf("the buses reconnected %d times through two SIGKILLs of their nodes", r)
	}
}

// waitReplicasOnline waits until every replica of the two service queues is
// online again: a quorum queue of three survives one lost replica at a time,
// not a second one before the first is back.
func waitReplicasOnline(t *testing.T, c *testinfra.RabbitCluster) {
	t.Helper()
	start := time.Now()
	waitFor(t, nodeWait, "every replica online", func() bool {
		for _, q := range []string{"test.consumer", "test.widgets"} {
			if info := c.Queue("/", q); len(info.Online) != len(c.Nodes) {
				return false
			}
		}
		return true
	})
	t.Logf("every replica online again after %v", time.Since(start).Round(time.Millisecond))
}

// nodeWait bounds waiting for a restarted node to rejoin its cluster.
const nodeWait = 3 * time.Minute

// TestClusterConsumerResubscribesWhenCancelled makes the broker cancel the
// bus's consumer (basic.cancel) by deleting its queue, and moves the queue's
// leader by removing its leader's replica: the bus subscribes again on the
// same connection and keeps handling events.
func TestClusterConsumerResubscribesWhenCancelled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node RabbitMQ cluster")
	}
	c := testinfra.StartRabbitCluster(t, 3)
	var handled atomic.Int32
	con := startBus(t, eventbus.Config{URL: c.URL(), Service: "test.consumer", QueueType: eventbus.QueueQuorum,
		ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second, Logger: clusterLogger()}, func(b *eventbus.Bus) {
		if err := eventbus.Handle(b, widgetMade, func(ctx context.Context, ev eventbus.Event[widget]) error {
			handled.Add(1)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	pub := startBus(t, eventbus.Config{URL: c.URL(), Service: "test.widgets", QueueType: eventbus.QueueQuorum, Logger: clusterLogger()}, func(b *eventbus.Bus) {
		if err := b.Publishes(widgetMade); err != nil {
			t.Fatal(err)
		}
	})
	ctx := context.Background()
	publish := func(n int) {
		t.Helper()
		target := handled.Load() + int32(n)
		for i := range n {
			if err := pub.Publish(ctx, mustMessage(t, ctx, widgetMade, newWidget(i))); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 60*time.Second, "events handled", func() bool { return handled.Load() >= target })
	}
	publish(10)
	// The handler counts before the bus acks: let the last acks reach the
	// broker (an ack of a delivery from the deleted queue is not what this
	// test is about), as the management API sees it (it lags up to a second).
	time.Sleep(time.Second)
	waitFor(t, 20*time.Second, "every delivery acked", func() bool { return c.Queue("/", "test.consumer").Messages == 0 })

	// The queue is deleted under the consumer: the broker sends basic.cancel
	// and the bus subscribes again on the same connection; or, when no cancel
	// arrives, the bus's consumer check finds the queue gone and reconnects.
	start := time.Now()
	c.Ctl(c.Nodes[0], "delete_queue", "test.consumer")
	// Until the bus declares the queue again, events are routed to no queue
	// of its: wait for the new subscription (or the new session) first.
	waitFor(t, 30*time.Second, "consumer subscribed again", func() bool {
		s := con.Stats()
		return s.Resubscribes == 1 || (s.Reconnects == 1 && con.Healthy() == nil)
	})
	viaCancel := con.Stats().Resubscribes == 1
	t.Logf("subscribed again %v after the queue was deleted (after a basic.cancel: %v)", time.Since(start).Round(time.Millisecond), viaCancel)
	publish(10)
	// The management API's counts lag a few seconds.
	waitFor(t, 20*time.Second, "the queue declared again, quorum on 3 nodes, with the bus's consumer", func() bool {
		q := c.Queue("/", "test.consumer")
		return q.Type == "quorum" && q.Consumers == 1 && len(q.Members) == 3
	})

	// The leader's replica is removed: the leadership moves to another
	// member. Whether RabbitMQ cancels the consumer or moves it with the
	// leader, events must keep flowing.
	old := c.Queue("/", "test.consumer").Leader
	resubscribes, reconnects := con.Stats().Resubscribes, con.Stats().Reconnects
	c.Queues(c.Nodes[0], "delete_member", "test.consumer", old)
	waitFor(t, 30*time.Second, "a new leader", func() bool {
		l := c.Queue("/", "test.consumer").Leader
		return l != "" && l != old
	})
	publish(10)
	t.Logf("leader moved from %s to %s; consumer resubscribed %d times, reconnected %d times for it",
		old, c.Queue("/", "test.consumer").Leader, con.Stats().Resubscribes-resubscribes, con.Stats().Reconnects-reconnects)
	c.Queues(c.Nodes[0], "add_member", "test.consumer", old)
	publish(10)
	if r := con.Stats().Reconnects; viaCancel && r != 0 {
		t.Errorf("the consumer reconnected %d times: a cancellation must not cost the connection", r)
	}
}
