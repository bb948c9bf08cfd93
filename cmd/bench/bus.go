package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
)

type benchEntity struct {
	ID      string `json:"id"`
	Payload string `json:"payload"`
}

var (
	benchHappened = eventbus.MustEventType[benchEntity]("bench.publisher", "thing_happened", "thing")
	benchIgnored  = eventbus.MustEventType[benchEntity]("bench.publisher", "thing_ignored", "thing")
)

func makeMessages(ctx context.Context, et eventbus.EventType[benchEntity], n, size int) ([]eventbus.Message, error) {
	msgs := make([]eventbus.Message, n)
	pad := strings.Repeat("x", max(size-60, 1))
	for i := range msgs {
		m, err := et.New(ctx, benchEntity{ID: fmt.Sprintf("thing-%d", i), Payload: pad})
		if err != nil {
			return nil, err
		}
		msgs[i] = m
	}
	return msgs, nil
}

// publishing mirrors the properties the bus sets, so that both sides of a
// comparison send the same bytes.
func publishing(m eventbus.Message) amqp.Publishing {
	h := amqp.Table{}
	for k, v := range m.Headers {
		h[k] = v
	}
	return amqp.Publishing{Headers: h, ContentType: "application/json", DeliveryMode: amqp.Persistent,
		MessageId: m.ID, Type: m.Type, AppId: m.AppID, Timestamp: m.FiredAt, CorrelationId: m.Headers["correlation_id"], Body: m.Body}
}

func startBus(ctx context.Context, cfg config, url, service string, reg func(*eventbus.Bus) error) (*eventbus.Bus, func(), error) {
	bcfg := eventbus.Config{URL: url, Service: service, Prefetch: cfg.prefetch, Logger: cfg.log}
	if cfg.obs.busConfig != nil { // suite observability: metrics and tracing on
		bcfg = cfg.obs.busConfig(bcfg)
	}
	b, err := eventbus.New(bcfg)
	if err != nil {
		return nil, nil, err
	}
	if reg != nil {
		if err := reg(b); err != nil {
			return nil, nil, err
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = b.Run(rctx); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for b.Healthy() != nil {
		if time.Now().After(deadline) {
			cancel()
			return nil, nil, fmt.Errorf("bus %s did not connect", service)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return b, func() { cancel(); <-done }, nil
}

// plainPublish publishes msgs with one channel, keeping inflight confirms
// outstanding (a sliding window), and returns msgs/s.
func plainPublish(ch *amqp.Channel, exchange, key string, msgs []eventbus.Message, inflight int) (float64, error) {
	window := make([]*amqp.DeferredConfirmation, 0, inflight)
	start := time.Now()
	for _, m := range msgs {
		if len(window) == inflight {
			if !window[0].Wait() {
				return 0, fmt.Errorf("plain publish: nacked")
			}
			window = window[1:]
		}
		dc, err := ch.PublishWithDeferredConfirm(exchange, key, false, false, publishing(m))
		if err != nil {
			return 0, err
		}
		window = append(window, dc)
	}
	for _, dc := range window {
		if !dc.Wait() {
			return 0, fmt.Errorf("plain publish: nacked")
		}
	}
	return rate(len(msgs), time.Since(start)), nil
}

// busPublish publishes msgs through b with inflight concurrent callers.
func busPublish(ctx context.Context, b *eventbus.Bus, msgs []eventbus.Message, inflight int) (float64, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, inflight)
	start := time.Now()
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(msgs) {
					return
				}
				if err := b.Publish(ctx, msgs[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return rate(len(msgs), time.Since(start)), nil
}

func benchBus(ctx context.Context, cfg config) error {
	url, dropVhost, err := newVhost(ctx, cfg)
	if err != nil {
		return fmt.Errorf("vhost: %w", err)
	}
	defer dropVhost()
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	if err := ch.ExchangeDeclare(eventbus.Exchange, "fanout", true, false, false, false, nil); err != nil {
		return err
	}
	if _, err := ch.QueueDeclare("bench.sink", true, false, false, false, amqp.Table{"x-queue-type": "classic"}); err != nil {
		return err
	}
	if err := ch.QueueBind("bench.sink", "", eventbus.Exchange, false, nil); err != nil {
		return err
	}
	fmt.Fprintf(cfg.out, "event bus benchmark: %d persistent messages of ~%d bytes per run, %d confirms in flight, prefetch %d, median of %d runs\n",
		cfg.messages, cfg.size, cfg.inflight, cfg.prefetch, cfg.repeat)

	// The publishing service's own bus: its queue is bound too, for both sides.
	pub, stopPub, err := startBus(ctx, cfg, url, "bench.publisher", func(b *eventbus.Bus) error {
		return b.Publishes(benchHappened, benchIgnored)
	})
	if err != nil {
		return err
	}
	defer stopPub()
	purge := func() error {
		_, err := ch.QueuePurge("bench.sink", false)
		return err
	}

	var results []result
	add := func(r result, err error) error {
		results = append(results, r)
		return err
	}
	// 1. Publishing, both sides into the same bound queues.
	pubRun := func(publish func([]eventbus.Message) (float64, error)) func() (float64, error) {
		return func() (float64, error) {
			msgs, err := makeMessages(ctx, benchHappened, cfg.messages, cfg.size)
			if err != nil {
				return 0, err
			}
			defer purge()
			return publish(msgs)
		}
	}
	plainPubRun := pubRun(func(msgs []eventbus.Message) (float64, error) {
		return plainPublish(ch, eventbus.Exchange, "", msgs, cfg.inflight)
	})
	busPubRun := pubRun(func(msgs []eventbus.Message) (float64, error) {
		return busPublish(ctx, pub, msgs, cfg.inflight)
	})
	if err := add(compare(cfg, "bus publish (confirmed, persistent)", "plain amqp091-go publisher", 0.9, plainPubRun, busPubRun)); err != nil {
		return err
	}

	// 2. Consuming. Queues are filled through the default exchange (admin).
	fill := func(queue string, et eventbus.EventType[benchEntity]) error {
		if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "classic"}); err != nil {
			return err
		}
		msgs, err := makeMessages(ctx, et, cfg.messages, cfg.size)
		if err != nil {
			return err
		}
		_, err = plainPublish(ch, "", queue, msgs, cfg.inflight)
		return err
	}
	plainConRun := func() (float64, error) {
		if err := fill("bench.plain-consumer", benchHappened); err != nil {
			return 0, err
		}
		return plainConsume(url, "bench.plain-consumer", cfg.messages, cfg.prefetch)
	}
	busConRun := func() (float64, error) {
		if err := fill("bench.consumer", benchHappened); err != nil {
			return 0, err
		}
		return busConsume(ctx, cfg, url, benchHappened, cfg.messages, func(s eventbus.Stats) uint64 { return s.Handled })
	}
	busSkipRun := func() (float64, error) {
		if err := fill("bench.consumer", benchIgnored); err != nil {
			return 0, err
		}
		return busConsume(ctx, cfg, url, benchHappened, cfg.messages, func(s eventbus.Stats) uint64 { return s.Unhandled })
	}
	if err := add(compare(cfg, "bus consume (typed handler, manual ack)", "plain amqp091-go consumer", 0.97, plainConRun, busConRun)); err != nil {
		return err
	}
	if err := add(compare(cfg, "bus skip of unhandled events", "plain amqp091-go consumer", 0.9, plainConRun, busSkipRun)); err != nil {
		return err
	}
	for _, q := range []string{"bench.consumer", "bench.plain-consumer"} {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			return err
		}
	}

	// 3. The outbox relay against direct publishing through the bus.
	db, dropDB, err := newDatabase(ctx, cfg)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer dropDB()
	if err := eventbus.Migrate(ctx, db); err != nil {
		return err
	}
	relayRun := func() (float64, error) {
		defer purge()
		return relayRun(ctx, cfg, db, pub)
	}
	if err := add(compare(cfg, "outbox relay sweep (claim, publish, mark)", "bus publish (direct)", 0.5, busPubRun, relayRun)); err != nil {
		return err
	}
	fastRun := func() (float64, error) {
		defer purge()
		return fastPathRun(ctx, cfg, db, pub)
	}
	if err := add(compare(cfg, "outbox fast path (publish on commit, mark)", "bus publish (direct)", 0.9, busPubRun, fastRun)); err != nil {
		return err
	}
	printResults(cfg.out, "event bus", results)
	return nil
}

// plainConsume times a plain consumer from dialing to the nth ack, like
// busConsume times the bus from Run to the nth ack.
func plainConsume(url, queue string, n, prefetch int) (float64, error) {
	start := time.Now()
	conn, err := amqp.Dial(url)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return 0, err
	}
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return 0, err
	}
	got := 0
	for d := range ds {
		if err := d.Ack(false); err != nil {
			return 0, err
		}
		if got++; got == n {
			break
		}
	}
	return rate(n, time.Since(start)), nil
}

func busConsume(ctx context.Context, cfg config, url string, et eventbus.EventType[benchEntity], n int, count func(eventbus.Stats) uint64) (float64, error) {
	start := time.Now()
	b, stop, err := startBus(ctx, cfg, url, "bench.consumer", func(b *eventbus.Bus) error {
		return eventbus.Handle(b, et, func(ctx context.Context, ev eventbus.Event[benchEntity]) error { return nil })
	})
	if err != nil {
		return 0, err
	}
	defer stop()
	deadline := time.Now().Add(5 * time.Minute)
	for count(b.Stats()) < uint64(n) {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("bus consumed %d of %d", count(b.Stats()), n)
		}
		time.Sleep(time.Millisecond)
	}
	return rate(n, time.Since(start)), nil
}
