// Command peers measures Sagittarius's event bus against its best-known Go
// peers, side by side in one run, on the same broker and database:
//
//   - publishing with confirms: eventbus.Bus.Publish against ThreeDotsLabs'
//     watermill-amqp v3 publisher (ConfirmDelivery, a pool of as many channels
//     as the bus has confirms in flight);
//   - consuming with manual acks and the same prefetch: the bus (a typed
//     handler) against the watermill-amqp subscriber, and against a plain
//     amqp091-go consumer;
//   - the outbox: eventbus.Relay sweeping a backlog of committed rows against
//     watermill-sql v4's forwarder (components/forwarder) moving the same
//     backlog from its MySQL topic table to the broker.
//
// Each comparison alternates the two sides and reports medians, like
// cmd/bench. It is a module of its own, so that watermill never enters the
// product's dependency graph; `scripts/bench -suite peers` (cmd/bench) runs it.
// It reads the environment scripts/bench exports: SAGITTARIUS_TEST_AMQP_URL,
// SAGITTARIUS_TEST_RABBIT_API, SAGITTARIUS_TEST_MYSQL_DSN.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
)

type entity struct {
	ID      string `json:"id"`
	Payload string `json:"payload"`
}

const service = "peers.publisher"

var happened = eventbus.MustEventType[entity](service, "thing_happened", "thing")

type config struct {
	amqpURL, apiURL, mysqlDSN string
	messages, size            int
	inflight, prefetch        int
	repeat                    int
	out                       io.Writer
	log                       *slog.Logger
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	cfg := config{out: stdout, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	fs.IntVar(&cfg.messages, "messages", 10000, "messages per measurement")
	fs.IntVar(&cfg.size, "size", 600, "entity size in bytes (JSON)")
	fs.IntVar(&cfg.inflight, "inflight", 256, "publisher confirms in flight (watermill-amqp: channels in its pool)")
	fs.IntVar(&cfg.prefetch, "prefetch", 200, "consumer prefetch, both sides")
	fs.IntVar(&cfg.repeat, "repeat", 3, "runs of each side of a comparison, alternating; medians are reported")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.amqpURL = getenv("SAGITTARIUS_TEST_AMQP_URL")
	cfg.apiURL = getenv("SAGITTARIUS_TEST_RABBIT_API")
	cfg.mysqlDSN = getenv("SAGITTARIUS_TEST_MYSQL_DSN")
	if cfg.amqpURL == "" || cfg.apiURL == "" || cfg.mysqlDSN == "" {
		return errors.New("SAGITTARIUS_TEST_AMQP_URL, SAGITTARIUS_TEST_RABBIT_API and SAGITTARIUS_TEST_MYSQL_DSN must be set (scripts/bench sets them)")
	}
	return bench(ctx, cfg)
}

func bench(ctx context.Context, cfg config) error {
	url, dropVhost, err := newVhost(ctx, cfg)
	if err != nil {
		return fmt.Errorf("vhost: %w", err)
	}
	defer dropVhost()
	db, dropDB, err := newDatabase(ctx, cfg)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer dropDB()
	if err := eventbus.Migrate(ctx, db); err != nil {
		return err
	}
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
	const sink = "peers.sink"
	if _, err := ch.QueueDeclare(sink, true, false, false, false, amqp.Table{"x-queue-type": "classic"}); err != nil {
		return err
	}
	if err := ch.QueueBind(sink, "", eventbus.Exchange, false, nil); err != nil {
		return err
	}
	purge := func() error {
		_, err := ch.QueuePurge(sink, false)
		return err
	}
	fmt.Fprintf(cfg.out, "peers: %d persistent messages of ~%d bytes per run, %d confirms in flight, prefetch %d, same broker and database, alternating, median of %d runs\n",
		cfg.messages, cfg.size, cfg.inflight, cfg.prefetch, cfg.repeat)

	bus, stopBus, err := startBus(ctx, cfg, url, service, func(b *eventbus.Bus) error { return b.Publishes(happened) })
	if err != nil {
		return err
	}
	defer stopBus()
	wmPub, err := wamqp.NewPublisher(wmConfig(url, "", cfg), watermill.NopLogger{})
	if err != nil {
		return fmt.Errorf("watermill-amqp publisher: %w", err)
	}
	defer wmPub.Close()

	var results []result
	add := func(r result, err error) error {
		results = append(results, r)
		return err
	}

	// 1. Publishing into the same bound queue, cfg.inflight callers each.
	busPub := func() (float64, error) {
		defer purge()
		msgs, err := makeMessages(ctx, cfg.messages, cfg.size)
		if err != nil {
			return 0, err
		}
		return concurrently(cfg.inflight, len(msgs), func(i int) error { return bus.Publish(ctx, msgs[i]) })
	}
	wmPublish := func() (float64, error) {
		defer purge()
		msgs, err := makeMessages(ctx, cfg.messages, cfg.size)
		if err != nil {
			return 0, err
		}
		return concurrently(cfg.inflight, len(msgs), func(i int) error {
			return wmPub.Publish(eventbus.Exchange, wmMessage(msgs[i]))
		})
	}
	if err := add(compare(cfg, "bus publish (confirmed, persistent)", "watermill-amqp publisher", 1.3, wmPublish, busPub)); err != nil {
		return err
	}

	// 2. Consuming a filled queue, manual acks, the same prefetch.
	fill := func(queue string) error {
		if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "classic"}); err != nil {
			return err
		}
		msgs, err := makeMessages(ctx, cfg.messages, cfg.size)
		if err != nil {
			return err
		}
		return plainPublish(ch, "", queue, msgs, cfg.inflight)
	}
	drop := func(queue string) { _, _ = ch.QueueDelete(queue, false, false, false) }
	busCon := func() (float64, error) {
		const queue = "peers.consumer" // the bus consumes the queue named after its service
		defer drop(queue)
		if err := fill(queue); err != nil {
			return 0, err
		}
		var first atomic.Int64
		b, stop, err := startBus(ctx, cfg, url, queue, func(b *eventbus.Bus) error {
			return eventbus.Handle(b, happened, func(context.Context, eventbus.Event[entity]) error {
				first.CompareAndSwap(0, time.Now().UnixNano())
				return nil
			})
		})
		if err != nil {
			return 0, err
		}
		defer stop()
		if err := waitUntil(func() bool { return b.Stats().Handled >= uint64(cfg.messages) }); err != nil {
			return 0, fmt.Errorf("bus consumed %d of %d", b.Stats().Handled, cfg.messages)
		}
		return rate(cfg.messages-1, time.Since(time.Unix(0, first.Load()))), nil
	}
	wmCon := func() (float64, error) {
		const queue = "peers.watermill-consumer"
		defer drop(queue)
		if err := fill(queue); err != nil {
			return 0, err
		}
		sub, err := wamqp.NewSubscriber(wmConfig(url, queue, cfg), watermill.NopLogger{})
		if err != nil {
			return 0, err
		}
		defer sub.Close()
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		in, err := sub.Subscribe(sctx, eventbus.Exchange)
		if err != nil {
			return 0, err
		}
		var start time.Time
		for n := 0; n < cfg.messages; n++ {
			select {
			case m := <-in:
				if n == 0 {
					start = time.Now()
				}
				m.Ack()
			case <-time.After(time.Minute):
				return 0, fmt.Errorf("watermill consumed %d of %d", n, cfg.messages)
			}
		}
		return rate(cfg.messages-1, time.Since(start)), nil
	}
	plainCon := func() (float64, error) {
		const queue = "peers.plain-consumer"
		defer drop(queue)
		if err := fill(queue); err != nil {
			return 0, err
		}
		return plainConsume(url, queue, cfg.messages, cfg.prefetch)
	}
	if err := add(compare(cfg, "bus consume (typed handler, manual ack)", "watermill-amqp subscriber", 1.3, wmCon, busCon)); err != nil {
		return err
	}
	if err := add(compare(cfg, "bus consume (typed handler, manual ack)", "plain amqp091-go consumer", 0.97, plainCon, busCon)); err != nil {
		return err
	}

	// 3. The outbox: a backlog of committed rows moved to the broker.
	sinkDepth := func() (int, error) {
		q, err := ch.QueueDeclarePassive(sink, true, false, false, false, amqp.Table{"x-queue-type": "classic"})
		return q.Messages, err
	}
	waitSink := func(n int) error {
		return waitUntil(func() bool { d, err := sinkDepth(); return err == nil && d >= n })
	}
	relay := func() (float64, error) {
		defer purge()
		msgs, err := makeMessages(ctx, cfg.messages, cfg.size)
		if err != nil {
			return 0, err
		}
		for i := 0; i < len(msgs); i += 500 {
			tx, err := db.BeginTxx(ctx, nil)
			if err != nil {
				return 0, err
			}
			if err := eventbus.Enqueue(ctx, tx, msgs[i:min(i+500, len(msgs))]...); err != nil {
				tx.Rollback()
				return 0, err
			}
			if err := tx.Commit(); err != nil {
				return 0, err
			}
		}
		r, err := eventbus.NewRelay(db, bus, eventbus.RelayConfig{Logger: cfg.log})
		if err != nil {
			return 0, err
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		start := time.Now()
		go func() { _ = r.Run(rctx); close(done) }()
		defer func() { cancel(); <-done }()
		if err := waitSink(len(msgs)); err != nil {
			return 0, fmt.Errorf("relay: %w", err)
		}
		elapsed := time.Since(start)
		cancel()
		<-done
		if _, err := db.ExecContext(ctx, `DELETE FROM eventbus_outbox`); err != nil {
			return 0, err
		}
		return rate(len(msgs), elapsed), nil
	}
	const fwdTopic = "peers_outbox"
	schema := wsql.DefaultMySQLSchema{SubscribeBatchSize: 500} // the relay's batch size
	forward := func() (float64, error) {
		defer purge()
		msgs, err := makeMessages(ctx, cfg.messages, cfg.size)
		if err != nil {
			return 0, err
		}
		group := "peers-" + randomSuffix() // a fresh offset: only this run's backlog
		sub, err := wsql.NewSubscriber(wsql.BeginnerFromStdSQL(db.DB), wsql.SubscriberConfig{
			ConsumerGroup: group, SchemaAdapter: schema, OffsetsAdapter: wsql.DefaultMySQLOffsetsAdapter{},
			InitializeSchema: true, PollInterval: 100 * time.Millisecond}, watermill.NopLogger{})
		if err != nil {
			return 0, err
		}
		if err := sub.SubscribeInitialize(fwdTopic); err != nil {
			return 0, err
		}
		if _, err := db.ExecContext(ctx, "DELETE FROM `watermill_"+fwdTopic+"`"); err != nil {
			return 0, err
		}
		for i := 0; i < len(msgs); i += 500 {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return 0, err
			}
			sp, err := wsql.NewPublisher(wsql.TxFromStdSQL(tx), wsql.PublisherConfig{SchemaAdapter: schema}, watermill.NopLogger{})
			if err != nil {
				tx.Rollback()
				return 0, err
			}
			batch := make([]*message.Message, 0, 500)
			for _, m := range msgs[i:min(i+500, len(msgs))] {
				batch = append(batch, wmMessage(m))
			}
			if err := forwarder.NewPublisher(sp, forwarder.PublisherConfig{ForwarderTopic: fwdTopic}).Publish(eventbus.Exchange, batch...); err != nil {
				tx.Rollback()
				return 0, err
			}
			if err := tx.Commit(); err != nil {
				return 0, err
			}
		}
		out, err := wamqp.NewPublisher(wmConfig(url, "", cfg), watermill.NopLogger{})
		if err != nil {
			return 0, err
		}
		defer out.Close()
		f, err := forwarder.NewForwarder(sub, out, watermill.NopLogger{}, forwarder.Config{ForwarderTopic: fwdTopic})
		if err != nil {
			return 0, err
		}
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		start := time.Now()
		go func() { _ = f.Run(fctx); close(done) }()
		defer func() { cancel(); <-done }()
		if err := waitSink(len(msgs)); err != nil {
			d, _ := sinkDepth()
			return 0, fmt.Errorf("forwarder moved %d of %d: %w", d, len(msgs), err)
		}
		return rate(len(msgs), time.Since(start)), nil
	}
	if err := add(compare(cfg, "outbox relay sweep (backlog to the broker)", "watermill-sql forwarder", 1.0, forward, relay)); err != nil {
		return err
	}
	printResults(cfg.out, results)
	return nil
}

// wmConfig is watermill-amqp's durable pub/sub configuration on our
// exchange: confirms on, cfg.inflight pooled publishing channels, the same
// prefetch, and queue as the subscriber's queue.
func wmConfig(url, queue string, cfg config) wamqp.Config {
	c := wamqp.NewDurablePubSubConfig(url, func(string) string { return queue })
	c.Publish.ConfirmDelivery = true
	c.Publish.ChannelPoolSize = cfg.inflight
	c.Consume.Qos.PrefetchCount = cfg.prefetch
	return c
}

// wmMessage is m as a watermill message: the same body, and the metadata
// watermill-amqp's marshaler turns into headers.
func wmMessage(m eventbus.Message) *message.Message {
	w := message.NewMessage(m.ID, m.Body)
	for k, v := range m.Headers {
		w.Metadata.Set(k, v)
	}
	return w
}

func makeMessages(ctx context.Context, n, size int) ([]eventbus.Message, error) {
	msgs := make([]eventbus.Message, n)
	pad := strings.Repeat("x", max(size-60, 1))
	for i := range msgs {
		m, err := happened.New(ctx, entity{ID: fmt.Sprintf("thing-%d", i), Payload: pad})
		if err != nil {
			return nil, err
		}
		msgs[i] = m
	}
	return msgs, nil
}

// publishing mirrors the properties the bus sets.
func publishing(m eventbus.Message) amqp.Publishing {
	h := amqp.Table{}
	for k, v := range m.Headers {
		h[k] = v
	}
	h[wamqp.DefaultMessageUUIDHeaderKey] = m.ID
	return amqp.Publishing{Headers: h, ContentType: "application/json", DeliveryMode: amqp.Persistent,
		MessageId: m.ID, Type: m.Type, AppId: m.AppID, Timestamp: m.FiredAt, Body: m.Body}
}

// plainPublish fills a queue with a sliding window of confirms.
func plainPublish(ch *amqp.Channel, exchange, key string, msgs []eventbus.Message, inflight int) error {
	window := make([]*amqp.DeferredConfirmation, 0, inflight)
	for _, m := range msgs {
		if len(window) == inflight {
			if !window[0].Wait() {
				return errors.New("plain publish: nacked")
			}
			window = window[1:]
		}
		dc, err := ch.PublishWithDeferredConfirm(exchange, key, false, false, publishing(m))
		if err != nil {
			return err
		}
		window = append(window, dc)
	}
	for _, dc := range window {
		if !dc.Wait() {
			return errors.New("plain publish: nacked")
		}
	}
	return nil
}

// plainConsume times a plain consumer from its first delivery to the nth
// ack. Every consumer here is timed so: steady-state throughput, without
// the connection and topology set-up (which differs: the bus declares its
// retry and dead-letter queues).
func plainConsume(url, queue string, n, prefetch int) (float64, error) {
	var start time.Time
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
		if got == 0 {
			start = time.Now()
		}
		if err := d.Ack(false); err != nil {
			return 0, err
		}
		if got++; got == n {
			break
		}
	}
	return rate(n-1, time.Since(start)), nil
}

// concurrently runs fn(0..n-1) on k goroutines and returns items/s.
func concurrently(k, n int, fn func(i int) error) (float64, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, k)
	start := time.Now()
	for range k {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return rate(n, time.Since(start)), nil
}

func startBus(ctx context.Context, cfg config, url, svc string, reg func(*eventbus.Bus) error) (*eventbus.Bus, func(), error) {
	b, err := eventbus.New(eventbus.Config{URL: url, Service: svc, Prefetch: cfg.prefetch, Logger: cfg.log})
	if err != nil {
		return nil, nil, err
	}
	if err := reg(b); err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = b.Run(rctx); close(done) }()
	if err := waitUntil(func() bool { return b.Healthy() == nil }); err != nil {
		cancel()
		return nil, nil, fmt.Errorf("bus %s did not connect", svc)
	}
	return b, func() { cancel(); <-done }, nil
}

// waitUntil polls cond every millisecond for up to five minutes.
func waitUntil(cond func() bool) error {
	deadline := time.Now().Add(5 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// result is one measurement against its baseline.
type result struct {
	name, baseline string
	rate, base     float64
	ratio          float64
	target         float64
}

// compare runs baseline and subject cfg.repeat times each, alternating which
// goes first, and returns the median rates and the median per-pair ratio.
func compare(cfg config, name, baseName string, target float64, baseline, subject func() (float64, error)) (result, error) {
	var bases, subjects, ratios []float64
	for i := range cfg.repeat {
		var b, s float64
		var err error
		if i%2 == 0 {
			if b, err = baseline(); err == nil {
				s, err = subject()
			}
		} else {
			if s, err = subject(); err == nil {
				b, err = baseline()
			}
		}
		if err != nil {
			return result{}, fmt.Errorf("%s vs %s: %w", name, baseName, err)
		}
		bases, subjects, ratios = append(bases, b), append(subjects, s), append(ratios, s/b)
	}
	return result{name: name, baseline: baseName, rate: median(subjects), base: median(bases), ratio: median(ratios), target: target}, nil
}

func printResults(w io.Writer, rs []result) {
	fmt.Fprintf(w, "\npeers\n%-44s %10s  %-28s %10s  %6s  %s\n", "measurement", "rate/s", "peer", "rate/s", "ratio", "target")
	for _, r := range rs {
		verdict := fmt.Sprintf(">= %.2f ", r.target)
		if r.target == 1 {
			verdict = "> 1 "
		}
		if r.ratio >= r.target && (r.target != 1 || r.ratio > 1) {
			verdict += "met"
		} else {
			verdict += "MISSED"
		}
		fmt.Fprintf(w, "%-44s %10.0f  %-28s %10.0f  %6.2f  %s\n", r.name, r.rate, r.baseline, r.base, r.ratio, verdict)
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newVhost creates a throw-away vhost with full permissions for the admin
// user and returns its AMQP URL and a function deleting it.
func newVhost(ctx context.Context, cfg config) (string, func(), error) {
	name := "peers-" + randomSuffix()
	api, err := url.Parse(cfg.apiURL)
	if err != nil {
		return "", nil, err
	}
	user := api.User.Username()
	call := func(ctx context.Context, method, path, body string) error {
		req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(cfg.apiURL, "/")+path, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
		}
		return nil
	}
	if err := call(ctx, http.MethodPut, "/api/vhosts/"+name, "{}"); err != nil {
		return "", nil, err
	}
	if err := call(ctx, http.MethodPut, "/api/permissions/"+name+"/"+url.PathEscape(user), `{"configure":".*","write":".*","read":".*"}`); err != nil {
		return "", nil, err
	}
	cleanup := func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = call(c, http.MethodDelete, "/api/vhosts/"+name, "")
	}
	return strings.TrimSuffix(cfg.amqpURL, "/") + "/" + url.PathEscape(name), cleanup, nil
}

// newDatabase creates a throw-away database and returns it with a function
// dropping it.
func newDatabase(ctx context.Context, cfg config) (*sqlx.DB, func(), error) {
	admin, err := sqlx.Open("mysql", cfg.mysqlDSN)
	if err != nil {
		return nil, nil, err
	}
	name := "peers_" + randomSuffix()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		admin.Close()
		return nil, nil, err
	}
	dsn, err := mysql.ParseDSN(cfg.mysqlDSN)
	if err != nil {
		return nil, nil, err
	}
	dsn.DBName = name
	dsn.ParseTime = true
	dsn.Loc = time.UTC
	db, err := sqlx.Open("mysql", dsn.FormatDSN())
	if err != nil {
		return nil, nil, err
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	return db, func() {
		db.Close()
		_, _ = admin.Exec("DROP DATABASE " + name)
		admin.Close()
	}, nil
}
