package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
)

// sizedMessages returns n messages whose bodies are about bodyBytes long and
// whose headers are those of a saga event.
func sizedMessages(ctx context.Context, n, bodyBytes int, headers map[string]string) ([]eventbus.Message, error) {
	probe, err := makeMessages(ctx, benchHappened, 1, 100)
	if err != nil {
		return nil, err
	}
	// makeMessages pads the entity to size-60 bytes; adjust for the envelope.
	size := max(100, bodyBytes-(len(probe[0].Body)-100))
	msgs, err := makeMessages(ctx, benchHappened, n, size)
	if err != nil {
		return nil, err
	}
	for i := range msgs {
		if headers != nil {
			h := make(map[string]string, len(headers))
			for k, v := range headers {
				h[k] = v
			}
			h[eventbus.HeaderCausationID] = uuid.NewString()
			msgs[i].Headers = h
		}
	}
	return msgs, nil
}

// brokerFanout measures the broker's confirmed fanout throughput with plain
// amqp091-go clients, the way the platform uses it: `publishers` connections
// publish persistent messages to a durable fanout exchange (each keeping
// inflight confirms outstanding) bound to `queues` durable classic queues,
// while one consumer per queue (own connection, manual acks, prefetch)
// drains it. It returns messages published per second, timed from the first
// publish to the last ack of the last queue.
func brokerFanout(ctx context.Context, cfg config, queues, publishers int, msgs []eventbus.Message) (float64, error) {
	vhostURL, dropVhost, err := newVhost(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer dropVhost()
	conn, err := amqp.Dial(vhostURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	if err := ch.ExchangeDeclare(eventbus.Exchange, "fanout", true, false, false, false, nil); err != nil {
		return 0, err
	}
	names := make([]string, queues)
	for i := range names {
		names[i] = fmt.Sprintf("bench.queue-%d", i)
		if _, err := ch.QueueDeclare(names[i], true, false, false, false, amqp.Table{"x-queue-type": "classic"}); err != nil {
			return 0, err
		}
		if err := ch.QueueBind(names[i], "", eventbus.Exchange, false, nil); err != nil {
			return 0, err
		}
	}

	// Consumers first, like the services: each waits for its share.
	var consumed sync.WaitGroup
	cerrs := make(chan error, queues)
	var cconns []*amqp.Connection
	defer func() {
		for _, c := range cconns {
			c.Close()
		}
	}()
	for _, q := range names {
		c, err := amqp.Dial(vhostURL)
		if err != nil {
			return 0, err
		}
		cconns = append(cconns, c)
		cch, err := c.Channel()
		if err != nil {
			return 0, err
		}
		if err := cch.Qos(cfg.prefetch, 0, false); err != nil {
			return 0, err
		}
		ds, err := cch.Consume(q, "", false, false, false, false, nil)
		if err != nil {
			return 0, err
		}
		consumed.Add(1)
		go func() {
			defer consumed.Done()
			got := 0
			for d := range ds {
				if err := d.Ack(false); err != nil {
					cerrs <- err
					return
				}
				if got++; got == len(msgs) {
					return
				}
			}
			cerrs <- fmt.Errorf("consumer of %s: deliveries closed after %d", q, got)
		}()
	}

	var pchs []*amqp.Channel
	for range publishers {
		c, err := amqp.Dial(vhostURL)
		if err != nil {
			return 0, err
		}
		cconns = append(cconns, c)
		pch, err := c.Channel()
		if err != nil {
			return 0, err
		}
		if err := pch.Confirm(false); err != nil {
			return 0, err
		}
		pchs = append(pchs, pch)
	}
	start := time.Now()
	var published sync.WaitGroup
	perrs := make(chan error, publishers)
	per := (len(msgs) + publishers - 1) / publishers
	for i, pch := range pchs {
		part := msgs[min(i*per, len(msgs)):min((i+1)*per, len(msgs))]
		published.Add(1)
		go func() {
			defer published.Done()
			if _, err := plainPublish(pch, eventbus.Exchange, "", part, max(1, cfg.inflight/publishers)); err != nil {
				perrs <- err
			}
		}()
	}
	published.Wait()
	close(perrs)
	if err := <-perrs; err != nil {
		return 0, err
	}
	done := make(chan struct{})
	go func() { consumed.Wait(); close(done) }()
	select {
	case <-done:
	case err := <-cerrs:
		return 0, err
	case <-time.After(5 * time.Minute):
		return 0, errors.New("consumers did not drain the queues within 5 minutes")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return rate(len(msgs), time.Since(start)), nil
}

// dbCommits measures the database's commit rate with a plain client:
// `conns` connections each run BEGIN; INSERT one row (body of rowBytes, like
// an outbox row); COMMIT in a loop for d. It returns commits per second.
func dbCommits(ctx context.Context, cfg config, conns, rowBytes int, d time.Duration) (float64, error) {
	db, dropDB, err := newDatabase(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer dropDB()
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if _, err := db.ExecContext(ctx, `CREATE TABLE commits (
		id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
		uuid CHAR(36) NOT NULL, body MEDIUMBLOB NOT NULL, created_at DATETIME(6) NOT NULL,
		UNIQUE KEY commits_uuid (uuid)) ENGINE=InnoDB`); err != nil {
		return 0, err
	}
	body := []byte(strings.Repeat("x", rowBytes))
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := time.Now()
	stop := start.Add(d)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					errs <- err
					return
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO commits (uuid, body, created_at) VALUES (?, ?, ?)`, uuid.NewString(), body, time.Now().UTC()); err != nil {
					tx.Rollback()
					errs <- err
					return
				}
				if err := tx.Commit(); err != nil {
					errs <- err
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return rate(int(n.Load()), elapsed), nil
}

// limits are the two physical bounds of the saga, measured with plain clients.
type limits struct {
	brokerRate    float64 // confirmed fanout publishes/s into queues queues
	brokerRuns    []float64
	brokerBusy    float64         // share of the machine's CPU time busy during the broker runs
	dbRates       map[int]float64 // commits/s by connections
	dbBusy        map[int]float64 // machine busy share by connections
	dbBest        float64
	dbBestConns   int
	queues        int
	publishers    int
	msgBytes      int
	brokerOrders  float64 // orders/s the broker allows
	dbOrders      float64 // orders/s the database allows
	sharedOrders  float64 // orders/s both allow together, when they share saturated CPUs
	implied       float64 // the bound that applies (see measureLimits)
	boundBy       string
	fraction      float64 // saga throughput / implied
	sagaOrdersSec float64
	background    float64 // the highest background load of a limit run (see busyShare)
	steal         float64 // the highest steal of a limit run
}

// cpuSaturated is the machine busy share above which a limit run is taken
// to be bound by CPU.
const cpuSaturated = 0.85

// busyShare runs run and returns its result, the share of the machine's CPU
// time (all CPUs; steal counts as busy) that was busy meanwhile, the share
// charged to processes that are neither the platform, its broker and
// database, nor this benchmark (background load), and the share the
// hypervisor gave to other guests (steal).
func busyShare(meter *cpuMeter, run func() (float64, error)) (v, busy, background, steal float64, err error) {
	before, known, self, start := readCPUStat(), meter.read(), selfTicks(), time.Now()
	v, err = run()
	d, elapsed := readCPUStat().sub(before), time.Since(start)
	if elapsed > 0 && before.busy > 0 {
		busy = min(float64(d.busy)/(elapsed.Seconds()*100*float64(runtime.NumCPU())), 1) // a tick is 10 ms
		background = backgroundShare(d.procs, sumTicks(known, meter.read())+selfTicks()-self, elapsed)
		steal = backgroundShare(d.steal, 0, elapsed)
	}
	return v, busy, background, steal, err
}

// sumTicks adds up the CPU ticks each process used between two readings of
// a cpuMeter (processes unreadable in either are left out).
func sumTicks(before, after []int64) int64 {
	var n int64
	for i := range before {
		if i < len(after) && before[i] >= 0 && after[i] >= 0 {
			n += after[i] - before[i]
		}
	}
	return n
}

// backgroundShare is the share of the machine's CPU time over elapsed that
// the machine was busy beyond the ticks of the known processes.
func backgroundShare(machine, known int64, elapsed time.Duration) float64 {
	if elapsed <= 0 || machine <= 0 {
		return 0
	}
	return max(0, float64(machine-known)/(elapsed.Seconds()*100*float64(runtime.NumCPU())))
}

// backgroundWarn is the background load above which the limits and the saga
// are not comparable: they were measured on machines that were not the same.
const backgroundWarn = 0.10

// measureLimits measures the broker's and the database's limits and the
// bound they imply for the saga. Each alone allows limit / (units per order)
// orders per second. If both limit runs kept the machine's CPUs busy, they
// were bound by the same CPUs: an order then costs the sum of its broker and
// database CPU time, and the implied limit is 1 / (events/broker +
// commits/database). Otherwise (one is bound by something else, e.g. disk
// flushes) it is the smaller of the two.
func measureLimits(ctx context.Context, cfg config, r sagaResult, queues int, meter *cpuMeter) (limits, error) {
	l := limits{queues: queues, publishers: cfg.limitPublishers, dbRates: map[int]float64{}, dbBusy: map[int]float64{}, msgBytes: r.avgEventBytes}
	msgs, err := sizedMessages(ctx, cfg.limitMessages, r.avgEventBytes, r.sampleHeaders)
	if err != nil {
		return l, err
	}
	var busy []float64
	for range cfg.limitRepeat {
		v, b, bg, st, err := busyShare(meter, func() (float64, error) { return brokerFanout(ctx, cfg, queues, cfg.limitPublishers, msgs) })
		if err != nil {
			return l, fmt.Errorf("broker fanout: %w", err)
		}
		l.brokerRuns, busy = append(l.brokerRuns, v), append(busy, b)
		l.background, l.steal = max(l.background, bg), max(l.steal, st)
	}
	l.brokerRate, l.brokerBusy = medianOf(l.brokerRuns), medianOf(busy)
	for _, c := range cfg.dbConns {
		var runs, busy []float64
		for range cfg.limitRepeat {
			v, b, bg, st, err := busyShare(meter, func() (float64, error) { return dbCommits(ctx, cfg, c, r.avgEventBytes, cfg.dbDuration) })
			if err != nil {
				return l, fmt.Errorf("database commits: %w", err)
			}
			runs, busy = append(runs, v), append(busy, b)
			l.background, l.steal = max(l.background, bg), max(l.steal, st)
		}
		l.dbRates[c], l.dbBusy[c] = medianOf(runs), medianOf(busy)
		if l.dbRates[c] > l.dbBest {
			l.dbBest, l.dbBestConns = l.dbRates[c], c
		}
	}
	l.sagaOrdersSec = r.throughput
	if r.eventsPerOrder > 0 {
		l.brokerOrders = l.brokerRate / r.eventsPerOrder
	}
	if commits := r.writeCommitsPerOrder; commits > 0 {
		l.dbOrders = l.dbBest / r.writeCommitsPerOrder
	}
	if l.brokerRate > 0 && l.dbBest > 0 {
		l.sharedOrders = 1 / (r.eventsPerOrder/l.brokerRate + r.writeCommitsPerOrder/l.dbBest)
	}
	l.implied, l.boundBy = l.brokerOrders, "broker-bound"
	if l.dbOrders < l.implied {
		l.implied, l.boundBy = l.dbOrders, "database-bound"
	}
	if l.brokerBusy >= cpuSaturated && l.dbBusy[l.dbBestConns] >= cpuSaturated && l.sharedOrders > 0 {
		l.implied, l.boundBy = l.sharedOrders, "CPU-bound: broker and database on the same CPUs"
	}
	if l.implied > 0 {
		l.fraction = r.throughput / l.implied
	}
	return l, nil
}

func printLimits(cfg config, r sagaResult, l limits) {
	w := cfg.out
	fmt.Fprintf(w, "\nlimits of this machine (plain clients, same run, same broker and database; %d CPUs)\n", runtime.NumCPU())
	runs := make([]string, len(l.brokerRuns))
	for i, v := range l.brokerRuns {
		runs[i] = fmt.Sprintf("%.0f", v)
	}
	fmt.Fprintf(w, "  broker   %7.0f msg/s confirmed fanout into %d durable classic queues drained by %d consumers; machine CPU %.0f%% busy\n",
		l.brokerRate, l.queues, l.queues, 100*l.brokerBusy)
	fmt.Fprintf(w, "           (persistent, ~%d B bodies, %d publishers, %d confirms in flight, prefetch %d; runs %s) = %.0f deliveries/s\n",
		l.msgBytes, l.publishers, cfg.inflight, cfg.prefetch, strings.Join(runs, ", "), l.brokerRate*float64(l.queues))
	var dbs []string
	for _, c := range cfg.dbConns {
		dbs = append(dbs, fmt.Sprintf("%.0f/s over %d connections (CPU %.0f%% busy)", l.dbRates[c], c, 100*l.dbBusy[c]))
	}
	fmt.Fprintf(w, "  database one-row insert + commit: %s\n", strings.Join(dbs, ", "))
	commits := r.writeCommitsPerOrder
	fmt.Fprintf(w, "model: an order costs %.2f events, each fanned out to %d queues (%.1f deliveries), and %.2f write commits\n",
		r.eventsPerOrder, l.queues, r.deliveriesPerOrder, commits)
	fmt.Fprintf(w, "  broker bound       %7.0f msg/s / %.2f events per order    = %7.1f orders/s\n", l.brokerRate, r.eventsPerOrder, l.brokerOrders)
	fmt.Fprintf(w, "  database bound     %7.0f commits/s / %.2f commits per order = %7.1f orders/s\n", l.dbBest, commits, l.dbOrders)
	if l.sharedOrders > 0 {
		fmt.Fprintf(w, "  both on shared CPUs  1 / (%.2f/%.0f + %.2f/%.0f)             = %7.1f orders/s (applies when both limit runs keep the CPUs >= %.0f%% busy)\n",
			r.eventsPerOrder, l.brokerRate, commits, l.dbBest, l.sharedOrders, 100*cpuSaturated)
	}
	if r.machineCPUPerOrder > 0 && l.brokerRate > 0 && l.dbBest > 0 {
		// Busy CPU time per message and per commit during the limit runs.
		cpus := float64(runtime.NumCPU()) * 1000
		perMsg, perCommit := l.brokerBusy*cpus/l.brokerRate, l.dbBusy[l.dbBestConns]*cpus/l.dbBest
		fmt.Fprintf(w, "  machine CPU per order: the saga %.1f ms; plain clients doing its broker and database work %.1f ms (%.2f ms per published message, %.2f ms per commit)\n",
			r.machineCPUPerOrder, r.eventsPerOrder*perMsg+commits*perCommit, perMsg, perCommit)
	}
	verdict := "met"
	if l.fraction < 0.5 {
		verdict = "MISSED"
	}
	if bg, st := max(l.background, r.background), max(l.steal, r.steal); bg > backgroundWarn || st > backgroundWarn {
		verdict += " (UNRELIABLE: see below)"
		defer fmt.Fprintf(w, "  UNRELIABLE: other processes used up to %.0f%% of the CPUs (saga %.0f%%, limit runs up to %.0f%%) and the hypervisor took up to %.0f%%\n"+
			"  (saga %.0f%%, limit runs up to %.0f%%), so the limits and the saga were not measured on the same machine. Run scripts/bench again\n"+
			"  with nothing else running.\n", 100*bg, 100*r.background, 100*l.background, 100*st, 100*r.steal, 100*l.steal)
	}
	fmt.Fprintf(w, "  implied limit      %7.1f orders/s (%s); saga (best phase) %.1f orders/s = %.2f of it  target >= 0.50 %s\n",
		l.implied, l.boundBy, l.sagaOrdersSec, l.fraction, verdict)
}
