package eventbus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/trace"
)

// ErrNotConnected is returned (wrapped) by Publish when the context ends
// while the bus waits for a broker connection.
var ErrNotConnected = errors.New("eventbus: not connected to the broker")

// ErrNotConfirmed is returned (wrapped) by Publish for a message the broker
// did not confirm: it nacked it or the connection was lost first. The message
// may or may not have been routed; publish it again (consumers are idempotent).
var ErrNotConfirmed = errors.New("eventbus: message not confirmed by the broker")

// Bus is a service's adapter to the shared broker: it publishes integration
// events to the fanout exchange sagittarius-a with publisher confirms, and
// consumes the service's own queue, dispatching each event type to its
// handler, retrying failures through the service's own retry queues and
// dead-lettering what cannot be handled.
//
// Register what the service publishes (Publishes) and handles (Handle,
// HandleTx) before calling Run. Publish is safe for concurrent use.
type Bus struct {
	cfg Config
	log *slog.Logger
	tls *tls.Config // for amqps://: the roots of Config.CAFile; nil: the system's

	mu        sync.Mutex // guards the registration maps and started
	started   bool
	handlers  map[string]*handler
	all       *handler             // the catch-all (HandleAll), nil without; set only before Run
	allTypes  map[string]EventInfo // the catch-all's known types (HandleAll)
	allByType map[string]*handler  // the catch-all with each known type's observer (resolveObservers)
	published map[string]EventInfo

	// publishing state; see pubChannel.
	pmu     sync.Mutex
	pch     *amqp.Channel
	blocked bool
	changed chan struct{} // closed and replaced whenever pch or blocked changes
	sendMu  sync.Mutex    // serializes frames on pch: a Channel is not safe for concurrent publishing
	// renewPub receives a publishing channel on which the broker nacked a
	// message; the session replaces it (see renewPubChannel).
	renewPub  chan *amqp.Channel
	lastRenew time.Time // when the session last replaced the publishing channel; only the session uses it

	nodes       *nodes // the broker nodes of cfg.URL; only Run's goroutine uses it
	connected   atomic.Bool
	afterCommit atomic.Pointer[func()]
	stats       counters

	conn   atomic.Pointer[amqp.Connection]         // the current connection, for DeadLetterDepth
	pubObs atomic.Pointer[map[string]TypeObserver] // observers of published types, set by Run
	tracer trace.Tracer                            // nil without Config.TracerProvider
}

// New validates cfg and returns a Bus. It does not connect: Run does.
func New(cfg Config) (*Bus, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tlsConfig, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	b := &Bus{
		tls:       tlsConfig,
		cfg:       cfg,
		log:       cfg.Logger.With("component", "eventbus", "service", cfg.Service),
		handlers:  make(map[string]*handler),
		published: make(map[string]EventInfo),
		changed:   make(chan struct{}),
		nodes:     newNodes(cfg.nodeURLs()),
		renewPub:  make(chan *amqp.Channel, 1),
	}
	if cfg.TracerProvider != nil {
		b.tracer = cfg.TracerProvider.Tracer(instrumentationScope)
	}
	return b, nil
}

// Service returns the service name the bus was created for.
func (b *Bus) Service() string { return b.cfg.Service }

// QueueName returns the service's queue: its name.
func (b *Bus) QueueName() string { return b.cfg.Service }

// DeadLetterQueue returns the name of the service's dead-letter queue.
func (b *Bus) DeadLetterQueue() string { return b.cfg.deadLetterQueue() }

// Publishes declares the event types this service publishes. Publish refuses
// a message whose type was not declared. Each type must belong to this
// service. It fails after Run has started.
func (b *Bus) Publishes(types ...EventInfoer) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return errors.New("eventbus: Publishes after Run")
	}
	for _, t := range types {
		info := t.Info()
		if info.Service != b.cfg.Service {
			return fmt.Errorf("eventbus: %s may not publish %s: an event is published only by the service that owns it", b.cfg.Service, info.Type())
		}
		b.published[info.Type()] = info
	}
	return nil
}

// Published returns the declared published event types, sorted by type.
func (b *Bus) Published() []EventInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]EventInfo, 0, len(b.published))
	for _, i := range b.published {
		out = append(out, i)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type() < out[j].Type() })
	return out
}

// Consumed returns the event types with a registered handler and the known
// types of the catch-all (HandleAll), sorted by type.
func (b *Bus) Consumed() []EventInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]EventInfo, 0, len(b.handlers))
	for _, h := range b.handlers {
		out = append(out, h.info)
	}
	for t, info := range b.allTypes {
		if _, own := b.published[t]; !own && b.handlers[t] == nil {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type() < out[j].Type() })
	return out
}

// Healthy returns nil while the bus is connected to the broker and ready to
// publish, ErrNotConnected otherwise.
func (b *Bus) Healthy() error {
	if b.connected.Load() {
		return nil
	}
	return ErrNotConnected
}

// Run connects to the broker, declares the topology, and consumes the
// service's queue until ctx is cancelled. When the connection is lost it
// reconnects with exponential backoff (each attempt to the next node of
// Config.URL), declares the topology again and resumes consuming; meanwhile
// Publish waits for the new connection (up to its context). When the broker
// cancels the consumer, it subscribes again on the same connection. On
// cancellation it stops consuming, waits up to
// Config.DrainTimeout for handlers in flight to finish and acknowledge, closes
// the connection and returns nil. It returns an error only for a second call.
func (b *Bus) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.started {
		b.mu.Unlock()
		return errors.New("eventbus: Run called twice")
	}
	b.started = true
	b.resolveObservers()
	handlers := make(map[string]*handler, len(b.handlers))
	for k, v := range b.handlers {
		handlers[k] = v
	}
	b.mu.Unlock()

	backoff := b.cfg.ReconnectMin
	for {
		start := time.Now()
		err := b.session(ctx, handlers)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > 30*time.Second {
			backoff = b.cfg.ReconnectMin
		}
		b.stats.reconnects.Add(1)
		b.log.Warn("broker connection lost; reconnecting", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, b.cfg.ReconnectMax)
	}
}

// session runs one connection until it fails or ctx is cancelled.
func (b *Bus) session(ctx context.Context, handlers map[string]*handler) error {
	node := b.nodes.pick()
	conn, err := amqp.DialConfig(node, amqp.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Dial:       amqp.DefaultDial(10 * time.Second),
		Properties: amqp.Table{"connection_name": b.cfg.Service},
		// amqp091 sets ServerName on the config it is given: a copy per dial.
		TLSClientConfig: b.tls.Clone(),
	})
	if err != nil {
		return fmt.Errorf("dial %s: %w", redactedHost(node), err)
	}
	defer conn.Close()
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 8))
	go func() { // always drained, or the connection deadlocks
		for bl := range blocked {
			if bl.Active {
				b.log.Warn("broker blocked this connection (resource alarm); publishing waits", "reason", bl.Reason)
			} else {
				b.log.Info("broker unblocked this connection")
			}
			b.setBlocked(bl.Active)
		}
	}()

	if err := b.declareTopology(conn); err != nil {
		return err
	}

	pch, pubClosed, err := openPubChannel(conn)
	if err != nil {
		return err
	}

	cch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open consuming channel: %w", err)
	}
	conClosed := cch.NotifyClose(make(chan *amqp.Error, 1))
	if err := cch.Qos(b.cfg.Prefetch, 0, false); err != nil {
		return fmt.Errorf("set prefetch: %w", err)
	}
	sub, deliveries, err := b.subscribe(conn, cch)
	if err != nil {
		return err
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go sub.watch(wctx)

	b.setPubChannel(pch)
	b.conn.Store(conn)
	b.connected.Store(true)
	b.log.Info("connected to broker", "node", redactedHost(node), "queue", b.cfg.Service, "queue_type", b.cfg.QueueType)
	defer func() {
		b.connected.Store(false)
		b.conn.Store(nil)
		b.setPubChannel(nil)
		b.setBlocked(false)
	}()

	// Handlers keep running during a drain: they get a context that is not
	// cancelled with ctx.
	hctx := context.WithoutCancel(ctx)
	// One reader acks what no handler wants (every queue receives every
	// event, so this path is kept to a map lookup and an ack, batched: see
	// unhandledAcks) and hands the rest to Concurrency workers.
	acks := newUnhandledAcks(cch, max(1, min(b.cfg.Prefetch/4, 64)))
	work := make(chan amqp.Delivery)
	var wg sync.WaitGroup
	for range b.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				b.dispatch(hctx, handlers, d)
				acks.settled(d.DeliveryTag)
			}
		}()
	}
	obs := b.cfg.Observer
	go func() {
		defer close(work)
		defer acks.flush()
		flushT := time.NewTimer(time.Hour)
		flushT.Stop()
		defer flushT.Stop()
		for {
			select {
			case d, ok := <-deliveries:
				if !ok {
					// Cancelled by the broker: subscribe again on
					// this channel (its delivery tags, and so the
					// batched acks, continue).
					if deliveries = sub.resubscribe(ctx); deliveries != nil {
						continue
					}
					return
				}
				if handlers[d.Type] == nil && b.catchAll(d.Type) == nil {
					b.stats.unhandled.Add(1)
					if obs != nil {
						obs.Unhandled()
					}
					if acks.add(d.DeliveryTag) {
						flushT.Reset(unhandledFlushAfter)
					}
					continue
				}
				acks.handOut(d.DeliveryTag)
				work <- d
			case <-flushT.C:
				acks.flush()
			}
		}
	}()
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()

	for {
		select {
		case <-ctx.Done():
			// Stop deliveries; finish and ack what is in flight, then close.
			sub.stop()
			select {
			case <-workersDone:
			case <-time.After(b.cfg.DrainTimeout):
				b.log.Warn("drain timeout: closing with handlers in flight; their messages will be redelivered")
			}
			return nil
		case e := <-connClosed:
			return fmt.Errorf("connection closed: %v", e)
		case e := <-pubClosed:
			return fmt.Errorf("publishing channel closed: %v", e)
		case e := <-conClosed:
			return fmt.Errorf("consuming channel closed: %v", e)
		case <-workersDone:
			return errors.New("delivery stream ended")
		case why := <-sub.orphan:
			return fmt.Errorf("consumer orphaned (%s)", why)
		case nacked := <-b.renewPub:
			if pch, pubClosed, err = b.renewPubChannel(conn, pch, pubClosed, nacked); err != nil {
				return err
			}
		}
	}
}

func (b *Bus) setPubChannel(ch *amqp.Channel) {
	b.pmu.Lock()
	b.pch = ch
	close(b.changed)
	b.changed = make(chan struct{})
	b.pmu.Unlock()
}

func (b *Bus) setBlocked(v bool) {
	b.pmu.Lock()
	b.blocked = v
	close(b.changed)
	b.changed = make(chan struct{})
	b.pmu.Unlock()
}

// pubChannel waits for a connected, unblocked publishing channel.
func (b *Bus) pubChannel(ctx context.Context) (*amqp.Channel, error) {
	for {
		b.pmu.Lock()
		ch, blocked, changed := b.pch, b.blocked, b.changed
		b.pmu.Unlock()
		if ch != nil && !blocked {
			return ch, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if blocked {
				return nil, fmt.Errorf("%w: connection blocked by a broker resource alarm: %w", ErrNotConnected, ctx.Err())
			}
			return nil, fmt.Errorf("%w: %w", ErrNotConnected, ctx.Err())
		}
	}
}

// SetAfterCommit registers f to run after each HandleTx transaction commits.
// NewRelay registers the relay's Notify here, so events a handler enqueued
// are published at once.
func (b *Bus) SetAfterCommit(f func()) { b.afterCommit.Store(&f) }

func (b *Bus) notifyCommitted() {
	if f := b.afterCommit.Load(); f != nil && *f != nil {
		(*f)()
	}
}
