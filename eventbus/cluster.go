package eventbus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// nodeURLs returns the node URLs of Config.URL: one, or the elements of a
// comma-separated list (spaces around them trimmed; empty elements are kept
// so that Validate refuses them).
func (c Config) nodeURLs() []string {
	parts := strings.Split(c.URL, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

// nodes rotates through the broker nodes of Config.URL. Not safe for
// concurrent use: only Run's goroutine dials.
type nodes struct {
	urls []string
	next int
}

// newNodes starts at a random node, so that the instances of a service (and
// the services) spread their connections over the cluster.
func newNodes(urls []string) *nodes {
	return &nodes{urls: urls, next: rand.IntN(len(urls))}
}

// pick returns the URL to dial now and moves on to the next node, so that a
// dial after a lost connection or a failed dial tries another node.
func (n *nodes) pick() string {
	u := n.urls[n.next]
	n.next = (n.next + 1) % len(n.urls)
	return u
}

// redactedHost returns the host:port of an AMQP URL, for logs (never the
// credentials).
func redactedHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Host
}

// subscription is the consumer of the service queue on one channel. It
// subscribes again when the broker cancels it: RabbitMQ sends basic.cancel to
// the consumers of a queue that is deleted, or that becomes unavailable on a
// node leaving the cluster. Without this, a cancelled consumer would sit on a
// live connection receiving nothing.
type subscription struct {
	b    *Bus
	conn *amqp.Connection
	ch   *amqp.Channel

	// orphan receives why the consumer was found orphaned (see watch).
	orphan chan string

	mu      sync.Mutex
	tag     string
	stopped bool
}

// subscribe starts consuming the service queue on ch and returns the
// subscription and its deliveries. The broker's cancellations are logged (the
// channel of NotifyCancel is drained until ch closes).
func (b *Bus) subscribe(conn *amqp.Connection, ch *amqp.Channel) (*subscription, <-chan amqp.Delivery, error) {
	s := &subscription{b: b, conn: conn, ch: ch, orphan: make(chan string, 1)}
	cancels := ch.NotifyCancel(make(chan string, 4))
	go func() { // always drained, or the channel's dispatcher blocks
		for tag := range cancels {
			b.log.Warn("broker cancelled the consumer of the service queue (queue deleted, or its leader moved); subscribing again", "queue", b.cfg.Service, "consumer_tag", tag)
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	ds, err := s.consumeLocked()
	if err != nil {
		return nil, nil, err
	}
	return s, ds, nil
}

// consumeLocked sends basic.consume with a new consumer tag; s.mu is held, so
// that stop cancels whichever tag is current.
func (s *subscription) consumeLocked() (<-chan amqp.Delivery, error) {
	tag := fmt.Sprintf("%s-%d", s.b.cfg.Service, time.Now().UnixNano())
	ds, err := s.ch.Consume(s.b.cfg.Service, tag, false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", s.b.cfg.Service, err)
	}
	s.tag = tag
	return ds, nil
}

// stop cancels the subscription (basic.cancel, waiting for cancel-ok, so no
// delivery follows) and prevents any further subscribe: the deliveries
// channel is closed once those in the client's buffer are read.
func (s *subscription) stop() {
	s.mu.Lock()
	s.stopped = true
	tag := s.tag
	s.mu.Unlock()
	_ = s.ch.Cancel(tag, false)
}

// resubscribe is called by the reader when the deliveries channel closed. If
// the broker cancelled the consumer while the channel stays open, it declares
// the topology again (the queue may have been deleted) and consumes again,
// retrying with the reconnect backoff for up to a minute, and returns the new
// deliveries. It returns nil when the stream ended for good: stop was called,
// ctx ended, the channel or connection closed, or subscribing kept failing
// (the session then ends and Run reconnects).
func (s *subscription) resubscribe(ctx context.Context) <-chan amqp.Delivery {
	backoff := s.b.cfg.ReconnectMin
	deadline := time.Now().Add(time.Minute)
	for {
		s.mu.Lock()
		stopped := s.stopped
		s.mu.Unlock()
		// A closing channel sets its closed flag before it closes its
		// consumers' deliveries: a closed channel here means no cancel.
		if stopped || ctx.Err() != nil || s.ch.IsClosed() || s.conn.IsClosed() {
			return nil
		}
		if time.Now().After(deadline) {
			s.b.log.Error("could not subscribe to the service queue again; reconnecting", "queue", s.b.cfg.Service)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, s.b.cfg.ReconnectMax)
		if err := s.b.declareTopology(s.conn); err != nil {
			s.b.log.Warn("declaring the topology again after a consumer cancellation failed; retrying", "error", err)
			continue
		}
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return nil
		}
		ds, err := s.consumeLocked()
		s.mu.Unlock()
		if err != nil {
			// A failed basic.consume closes the channel: the session ends.
			s.b.log.Warn("subscribing again after a consumer cancellation failed", "error", err)
			return nil
		}
		s.b.stats.resubscribes.Add(1)
		s.b.log.Info("subscribed to the service queue again", "queue", s.b.cfg.Service)
		return ds
	}
}

// openPubChannel opens a publishing channel in confirm mode on conn.
func openPubChannel(conn *amqp.Connection) (*amqp.Channel, chan *amqp.Error, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, fmt.Errorf("open publishing channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		return nil, nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	return ch, ch.NotifyClose(make(chan *amqp.Error, 1)), nil
}

// nacked reports that the broker nacked a message published on ch while ch
// stays open. Safe for concurrent use; it never blocks.
func (b *Bus) nacked(ch *amqp.Channel) {
	if ch.IsClosed() {
		return // the connection or channel was lost: the session reconnects
	}
	select {
	case b.renewPub <- ch:
	default: // a renewal is already pending
	}
}

// renewPubChannel replaces the publishing channel pch after the broker
// nacked a message on it, at most once a second, and returns the channel to
// use (pch itself when nothing was replaced).
//
// Why: on RabbitMQ 3.10.8 we saw a channel opened while a quorum queue was
// electing a new leader (the bus had just reconnected after the old leader's
// node was killed) nack every publish routed to that queue for as long as the
// channel lived, although the queue had a leader and a quorum again (its Raft
// log stopped growing: nothing reached it). A new channel reaches the
// queue's current leader. Messages still unconfirmed on the old channel fail
// with ErrNotConfirmed and are published again by their publisher (the
// relay).
func (b *Bus) renewPubChannel(conn *amqp.Connection, pch *amqp.Channel, closed chan *amqp.Error, nacked *amqp.Channel) (*amqp.Channel, chan *amqp.Error, error) {
	if nacked != pch || time.Since(b.lastRenew) < time.Second {
		return pch, closed, nil
	}
	b.lastRenew = time.Now()
	npch, nclosed, err := openPubChannel(conn)
	if err != nil {
		return nil, nil, err
	}
	b.setPubChannel(npch)
	_ = pch.Close() // a publish still sending on it fails with ErrNotConfirmed
	b.stats.pubChannelRenewals.Add(1)
	b.log.Warn("the broker nacked a publish: publishing on a new channel", "queue", b.cfg.Service)
	return npch, nclosed, nil
}

// consumerCheckInterval is how often a session asks the broker whether it
// still counts a consumer on the service queue (see watch).
const consumerCheckInterval = 5 * time.Second

// watch asks the broker every consumerCheckInterval, until ctx ends, whether
// the service queue exists and has a consumer. A consumer can be orphaned
// without a basic.cancel: on RabbitMQ 3.10.8 we saw a quorum queue deleted
// under the bus's consumer without the cancel reaching it, which left the bus
// on a live connection receiving nothing. When the queue is gone, or the
// broker counts no consumer on it twice in a row, watch reports it on
// s.orphan and the session ends: Run reconnects, declares the topology and
// subscribes again. (Cancelling the orphaned consumer instead made that
// broker close the whole connection with INTERNAL_ERROR.)
func (s *subscription) watch(ctx context.Context) {
	t := time.NewTicker(consumerCheckInterval)
	defer t.Stop()
	zero := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.conn.IsClosed() {
			return
		}
		n, err := s.consumerCount()
		var ae *amqp.Error
		switch {
		case errors.As(err, &ae) && ae.Code == amqp.NotFound:
			s.orphaned("the service queue no longer exists")
			zero = 0
		case err != nil:
			zero = 0
		case n == 0:
			if zero++; zero >= 2 {
				s.orphaned("the broker counts no consumer on the service queue")
				zero = 0
			}
		default:
			zero = 0
		}
	}
}

// consumerCount returns the broker's count of consumers on the service
// queue (queue.declare passive, on a channel of its own).
func (s *subscription) consumerCount() (int, error) {
	ch, err := s.conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(s.b.cfg.Service, true, false, false, false, nil)
	if err != nil {
		return 0, err
	}
	return q.Consumers, nil
}

// orphaned reports on s.orphan (once) that the consumer is orphaned, unless
// the subscription was stopped.
func (s *subscription) orphaned(why string) {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return
	}
	select {
	case s.orphan <- why:
	default:
	}
}
