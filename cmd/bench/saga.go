package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
)

// sagaConfig is the load of the saga suite.
type sagaConfig struct {
	clients   int           // concurrent closed-loop clients
	orders    int           // at most this many orders
	duration  time.Duration // at most this long (after warm-up)
	warmup    time.Duration // orders confirmed before this are not timed
	customers int
	products  int
	lines     int           // lines per order
	poll      time.Duration // how often the watcher asks the orders database
}

// httpClient returns a client keeping n idle connections per host, so that
// n concurrent clients never redial (net/http keeps 2 by default).
func httpClient(n int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * n
	t.MaxIdleConnsPerHost = 2 * n
	return &http.Client{Transport: t, Timeout: 60 * time.Second}
}

// callJSON sends body (JSON, unless nil) and decodes a want-status answer
// into out (unless nil).
func callJSON(ctx context.Context, c *http.Client, method, url string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/hal+json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, url, res.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// dbCounters is what the platform's databases and MariaDB count.
type dbCounters struct {
	events    map[string]int   // outbox rows by type
	handled   int              // inbox rows: one handler transaction each
	batches   int              // relay transactions that published rows (one sent_at per batch)
	comCommit int64            // MariaDB's Com_commit (server-wide)
	questions int64            // MariaDB's Questions: statements (server-wide)
	com       map[string]int64 // MariaDB's Com_* counters by statement kind (server-wide)
}

func (p *platform) counters(ctx context.Context) (dbCounters, error) {
	c := dbCounters{events: map[string]int{}}
	for _, s := range p.withQueue() {
		var rows []struct {
			Type string `db:"type"`
			N    int    `db:"n"`
		}
		if err := s.db.SelectContext(ctx, &rows, `SELECT type, COUNT(*) AS n FROM eventbus_outbox GROUP BY type`); err != nil {
			return c, fmt.Errorf("%s outbox: %w", s.dir, err)
		}
		for _, r := range rows {
			c.events[r.Type] += r.N
		}
		var n, b int
		if err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM eventbus_inbox`); err != nil {
			return c, fmt.Errorf("%s inbox: %w", s.dir, err)
		}
		if err := s.db.GetContext(ctx, &b, `SELECT COUNT(DISTINCT sent_at) FROM eventbus_outbox`); err != nil {
			return c, fmt.Errorf("%s outbox: %w", s.dir, err)
		}
		c.handled += n
		c.batches += b
	}
	var name string
	if err := p.admin.QueryRowxContext(ctx, `SHOW GLOBAL STATUS LIKE 'Com_commit'`).Scan(&name, &c.comCommit); err != nil {
		return c, fmt.Errorf("Com_commit: %w", err)
	}
	if err := p.admin.QueryRowxContext(ctx, `SHOW GLOBAL STATUS LIKE 'Questions'`).Scan(&name, &c.questions); err != nil {
		return c, fmt.Errorf("Questions: %w", err)
	}
	rows, err := p.admin.QueryContext(ctx, `SHOW GLOBAL STATUS LIKE 'Com\_%'`)
	if err != nil {
		return c, fmt.Errorf("Com_*: %w", err)
	}
	defer rows.Close()
	c.com = map[string]int64{}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return c, err
		}
		c.com[strings.TrimPrefix(name, "Com_")] = v
	}
	if err := rows.Err(); err != nil {
		return c, err
	}
	return c, nil
}

// quiesce waits until every outbox is sent, every main queue is empty and
// the inboxes stopped growing (three checks in a row, 300 ms apart).
func (p *platform) quiesce(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	stable, last := 0, -1
	for stable < 3 {
		if time.Now().After(deadline) {
			return fmt.Errorf("platform not quiet after %v", within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
		pending, handled := 0, 0
		for _, s := range p.withQueue() {
			var n, h int
			if err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL`); err != nil {
				return err
			}
			if err := s.db.GetContext(ctx, &h, `SELECT COUNT(*) FROM eventbus_inbox`); err != nil {
				return err
			}
			pending += n
			handled += h
		}
		depths, err := p.queueDepths()
		if err != nil {
			return err
		}
		ready := 0
		for _, d := range depths {
			ready += d
		}
		if pending == 0 && ready == 0 && handled == last {
			stable++
		} else {
			stable = 0
		}
		last = handled
	}
	return nil
}

// fixtures are the customers and products orders are placed with.
type fixtures struct {
	customers []string
	methods   []string // each customer's payment method (token tok_bench), registered with payments
	products  []string
}

// setupSaga registers customers and products through the gateway, stocks
// every product generously (the benchmark measures the confirmed path), and
// waits until the orders service knows them all.
func setupSaga(ctx context.Context, p *platform, sc sagaConfig, client *http.Client) (fixtures, error) {
	var fx fixtures
	gw := p.gateway.url
	tag := randomSuffix()
	fx.customers = make([]string, sc.customers)
	fx.methods = make([]string, sc.customers)
	fx.products = make([]string, sc.products)
	// Sixteen at a time: a thousand products take seconds, not a minute.
	if err := parallel(ctx, 16, sc.customers, func(i int) error {
		var cu struct{ ID string }
		err := callJSON(ctx, client, "POST", gw+"/customers/v1/customers",
			map[string]any{"email": fmt.Sprintf("bench-%s-%d@example.com", tag, i), "name": "Bench Shopper"}, http.StatusCreated, &cu)
		fx.customers[i] = cu.ID
		if err != nil {
			return err
		}
		var m struct{ ID string }
		err = callJSON(ctx, client, "POST", gw+"/payments/v1/payment-methods",
			map[string]any{"token": "tok_bench", "customer_id": cu.ID}, http.StatusCreated, &m)
		fx.methods[i] = m.ID
		return err
	}); err != nil {
		return fx, err
	}
	if err := parallel(ctx, 16, sc.products, func(i int) error {
		var pr struct{ ID string }
		err := callJSON(ctx, client, "POST", gw+"/catalog/v1/products", map[string]any{
			"sku": fmt.Sprintf("BENCH-%s-%d", strings.ToUpper(tag), i), "name": fmt.Sprintf("Bench widget %d", i),
			"description": "stocked by cmd/bench", "price": map[string]any{"amount": 1000 + i, "currency": "EUR"},
		}, http.StatusCreated, &pr)
		fx.products[i] = pr.ID
		return err
	}); err != nil {
		return fx, err
	}
	if err := parallel(ctx, 16, sc.products, func(i int) error {
		id := fx.products[i]
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := callJSON(ctx, client, "POST", gw+"/inventory/v1/stock-items/"+id+"/replenishments",
				map[string]any{"quantity": 1_000_000}, http.StatusCreated, nil)
			if err == nil {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("inventory never learned product %s: %w", id, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}); err != nil {
		return fx, err
	}
	orders := p.service("orders")
	if orders == nil {
		return fx, errors.New("no orders service in services.conf")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var nc, np int
		if err := orders.db.GetContext(ctx, &nc, `SELECT COUNT(*) FROM customers WHERE active`); err != nil {
			return fx, err
		}
		if err := orders.db.GetContext(ctx, &np, `SELECT COUNT(*) FROM products WHERE active AND price_amount IS NOT NULL`); err != nil {
			return fx, err
		}
		if nc == len(fx.customers) && np == len(fx.products) {
			break
		}
		if time.Now().After(deadline) {
			return fx, fmt.Errorf("orders knows %d of %d customers and %d of %d products after 30 s", nc, len(fx.customers), np, len(fx.products))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fx, p.quiesce(ctx, 60*time.Second)
}

// parallel runs fn(0..n-1) on k goroutines and returns the first error.
func parallel(ctx context.Context, k, n int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, k)
	for range k {
		wg.Go(func() {
			for ctx.Err() == nil {
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
		return err
	}
	return ctx.Err()
}

// watcher learns when orders leave status pending by asking the orders
// database (one indexed query per poll for every order in flight: no extra
// queue on the broker, no extra HTTP load on the services).
type watcher struct {
	db      *sqlx.DB
	mu      sync.Mutex
	waiting map[string]chan string
}

func (w *watcher) wait(id string) chan string {
	ch := make(chan string, 1)
	w.mu.Lock()
	w.waiting[id] = ch
	w.mu.Unlock()
	return ch
}

func (w *watcher) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		ids := make([]string, 0, len(w.waiting))
		for id := range w.waiting {
			ids = append(ids, id)
		}
		w.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		q, args, err := sqlx.In(`SELECT id, status FROM orders WHERE id IN (?) AND status <> 'pending'`, ids)
		if err != nil {
			continue
		}
		var rows []struct {
			ID     string `db:"id"`
			Status string `db:"status"`
		}
		if err := w.db.SelectContext(ctx, &rows, q, args...); err != nil {
			continue
		}
		w.mu.Lock()
		for _, r := range rows {
			if ch, ok := w.waiting[r.ID]; ok {
				ch <- r.Status
				delete(w.waiting, r.ID)
			}
		}
		w.mu.Unlock()
	}
}

// placed is one order of the run, as its client saw it.
type placed struct {
	id       string
	start    time.Time // POST sent
	created  time.Time // 201 received
	observed time.Time // watcher saw the final status
	status   string
}

// sagaResult is the measured saga.
type sagaResult struct {
	orders                 []placed
	window                 time.Duration // timed steady state
	inWindow               int           // orders confirmed within it
	throughput             float64       // confirmed orders/s in the window
	p50, p95, p99, max     time.Duration // POST sent to order_confirmed fired
	postP50, postP99       time.Duration // POST sent to 201 received
	byStatus               map[string]int
	eventsPerOrder         float64
	eventsByType           map[string]float64 // per order
	handledPerOrder        float64            // inbox rows per order (handler transactions)
	batchesPerOrder        float64            // relay transactions per order
	writeCommitsPerOrder   float64            // POST + handlers + relay batches: the commits that write (and flush the log)
	commitsPerOrder        float64            // Com_commit delta per order (server-wide)
	statementsPerOrder     float64            // Questions delta per order (server-wide)
	statementsByKind       map[string]float64 // Com_* deltas per order (server-wide)
	cpuNames               []string
	cpuPerOrder            []float64 // ms of CPU per order, by process
	machineCPUPerOrder     float64   // ms of busy CPU per order, whole machine
	avgEventBytes          int       // body bytes of the saga's events
	avgHeaderBytes         int
	stages                 []stage
	deliveriesPerOrder     float64
	queues                 int
	errors                 int
	firstError             string
	clients                int
	sampleHeaders          map[string]string
	elapsed                time.Duration
	confirmedLatencyFromDB bool
	background             float64 // share of the machine's CPU time used by processes outside the platform and the bench during the run
	steal                  float64 // share of it the hypervisor gave to other guests
}

// runSaga places orders with sc.clients closed-loop clients (each places an
// order through the gateway, waits until it is confirmed or cancelled, and
// places the next) until sc.orders were placed or sc.duration passed after
// the warm-up, then waits for the platform to be quiet and counts what the
// orders cost.
func runSaga(ctx context.Context, p *platform, sc sagaConfig, fx fixtures, client *http.Client, cpu *cpuMeter) (sagaResult, error) {
	res := sagaResult{byStatus: map[string]int{}, eventsByType: map[string]float64{}, clients: sc.clients, queues: len(p.withQueue())}
	before, err := p.counters(ctx)
	if err != nil {
		return res, err
	}
	cpuBefore, statBefore, selfBefore, cpuStart := cpu.read(), readCPUStat(), selfTicks(), time.Now()
	machineBefore := statBefore.busy
	orders := p.service("orders")
	w := &watcher{db: orders.db, waiting: map[string]chan string{}}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go w.run(wctx, sc.poll)

	var (
		mu       sync.Mutex
		all      []placed
		started  atomic.Int64
		failures atomic.Int64
		firstErr atomic.Pointer[error]
	)
	begin := time.Now()
	warmEnd := begin.Add(sc.warmup)
	stopAt := warmEnd.Add(sc.duration)
	var stopped atomic.Int64 // unix nanos when placing stopped
	var wg sync.WaitGroup
	url := p.gateway.url + "/orders/v1/orders"
	for c := range sc.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), uint64(begin.UnixNano())))
			for ctx.Err() == nil {
				if time.Now().After(stopAt) || started.Add(1) > int64(sc.orders) {
					stopped.CompareAndSwap(0, time.Now().UnixNano())
					return
				}
				lines := make([]map[string]any, sc.lines)
				for i, j := range rng.Perm(len(fx.products))[:sc.lines] { // distinct products
					lines[i] = map[string]any{"product_id": fx.products[j], "quantity": 1}
				}
				c := rng.IntN(len(fx.customers))
				body := map[string]any{
					"customer_id": fx.customers[c], "lines": lines, "payment_method_id": fx.methods[c],
					"shipping_address": map[string]any{"name": "Bench Shopper", "line1": "1 Load Street", "postal_code": "10115", "city": "Berlin", "country": "DE"},
				}
				o := placed{start: time.Now()}
				var out struct{ ID string }
				if err := callJSON(ctx, client, "POST", url, body, http.StatusCreated, &out); err != nil {
					if failures.Add(1) == 1 {
						firstErr.Store(&err)
					}
					if failures.Load() > 20 {
						return
					}
					continue
				}
				o.created, o.id = time.Now(), out.ID
				ch := w.wait(o.id)
				select {
				case o.status = <-ch:
					o.observed = time.Now()
				case <-time.After(2 * time.Minute):
					o.status = "timeout"
				case <-ctx.Done():
					return
				}
				mu.Lock()
				all = append(all, o)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(begin)
	if f := failures.Load(); f > 0 {
		res.errors = int(f)
		res.firstError = (*firstErr.Load()).Error()
		if f > 20 {
			return res, fmt.Errorf("%d orders failed, first: %v", f, *firstErr.Load())
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	stopWatch()
	if err := p.quiesce(ctx, 2*time.Minute); err != nil {
		return res, err
	}
	after, err := p.counters(ctx)
	if err != nil {
		return res, err
	}
	cpuAfter, statAfter, selfAfter := cpu.read(), readCPUStat(), selfTicks()
	machineAfter := statAfter.busy
	delta, elapsed := statAfter.sub(statBefore), time.Since(cpuStart)
	res.background = backgroundShare(delta.procs, sumTicks(cpuBefore, cpuAfter)+selfAfter-selfBefore, elapsed)
	res.steal = backgroundShare(delta.steal, 0, elapsed)

	// Exact confirmation times: fired_at of each order_confirmed in the outbox.
	confirmedAt := map[string]time.Time{}
	var rows []struct {
		Body    []byte    `db:"body"`
		FiredAt time.Time `db:"fired_at"`
	}
	if err := orders.db.SelectContext(ctx, &rows, `SELECT body, fired_at FROM eventbus_outbox WHERE type = 'sales.orders.order_confirmed'`); err != nil {
		return res, err
	}
	for _, r := range rows {
		var b struct {
			Order struct{ ID string } `json:"order"`
		}
		if json.Unmarshal(r.Body, &b) == nil {
			confirmedAt[b.Order.ID] = r.FiredAt
		}
	}
	res.confirmedLatencyFromDB = len(confirmedAt) > 0

	n := len(all)
	res.orders = all
	if n == 0 {
		return res, errors.New("no order was placed")
	}
	end := time.Unix(0, stopped.Load())
	if end.Before(warmEnd) {
		return res, fmt.Errorf("the run ended (%d orders) before the warm-up of %v was over: raise -saga-orders or lower -saga-warmup", n, sc.warmup)
	}
	res.window = end.Sub(warmEnd)
	var lat, post []time.Duration
	for _, o := range all {
		res.byStatus[o.status]++
		done := o.observed
		if t, ok := confirmedAt[o.id]; ok {
			done = t
		}
		if o.status == "confirmed" && !done.Before(warmEnd) && !done.After(end) {
			res.inWindow++
		}
		if o.start.After(warmEnd) && o.status == "confirmed" {
			lat = append(lat, done.Sub(o.start))
			post = append(post, o.created.Sub(o.start))
		}
	}
	res.throughput = float64(res.inWindow) / res.window.Seconds()
	res.p50, res.p95, res.p99, res.max = percentile(lat, 0.50), percentile(lat, 0.95), percentile(lat, 0.99), percentile(lat, 1)
	res.postP50, res.postP99 = percentile(post, 0.50), percentile(post, 0.99)

	total := 0
	for t, c := range after.events {
		d := c - before.events[t]
		if d > 0 {
			res.eventsByType[t] = float64(d) / float64(n)
			total += d
		}
	}
	res.eventsPerOrder = float64(total) / float64(n)
	res.deliveriesPerOrder = res.eventsPerOrder * float64(res.queues)
	res.handledPerOrder = float64(after.handled-before.handled) / float64(n)
	res.batchesPerOrder = float64(after.batches-before.batches) / float64(n)
	res.writeCommitsPerOrder = 1 + res.handledPerOrder + res.batchesPerOrder
	res.commitsPerOrder = float64(after.comCommit-before.comCommit) / float64(n)
	res.statementsPerOrder = float64(after.questions-before.questions) / float64(n)
	res.statementsByKind = map[string]float64{}
	for k, v := range after.com {
		if d := float64(v-before.com[k]) / float64(n); d >= 0.05 {
			res.statementsByKind[k] = d
		}
	}
	res.cpuNames = cpu.names
	for i := range cpu.names {
		v := -1.0
		if cpuBefore[i] >= 0 && cpuAfter[i] >= 0 {
			v = float64(cpuAfter[i]-cpuBefore[i]) * 10 / float64(n) // ticks are 10 ms
		}
		res.cpuPerOrder = append(res.cpuPerOrder, v)
	}
	if machineBefore > 0 && machineAfter > machineBefore {
		res.machineCPUPerOrder = float64(machineAfter-machineBefore) * 10 / float64(n)
	}

	if res.stages, err = stages(ctx, p, all, warmEnd); err != nil {
		return res, err
	}

	// What the saga's events look like on the wire, for the broker limit.
	var bodyBytes, headerBytes, count int
	for _, s := range p.withQueue() {
		var r struct {
			N int     `db:"n"`
			B float64 `db:"b"`
			H float64 `db:"h"`
		}
		if err := s.db.GetContext(ctx, &r, `SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(body)),0) AS b, COALESCE(SUM(LENGTH(headers)),0) AS h FROM eventbus_outbox`); err != nil {
			return res, err
		}
		count += r.N
		bodyBytes += int(r.B)
		headerBytes += int(r.H)
		if res.sampleHeaders == nil && s.dir == "orders" {
			var h string
			if err := s.db.GetContext(ctx, &h, `SELECT headers FROM eventbus_outbox ORDER BY id DESC LIMIT 1`); err == nil {
				_ = json.Unmarshal([]byte(h), &res.sampleHeaders)
			}
		}
	}
	if count > 0 {
		res.avgEventBytes = bodyBytes / count
		res.avgHeaderBytes = headerBytes / count
	}
	return res, nil
}

func percentile(xs []time.Duration, q float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// printSagaPhases prints one line per phase of the saga.
func printSagaPhases(cfg config, rs []sagaResult) {
	w := cfg.out
	fmt.Fprintf(w, "\nsaga: orders placed through the gateway by closed-loop clients (each places an order, waits until it is confirmed, places the next)\n")
	fmt.Fprintf(w, "  %7s %7s %10s %10s %10s %10s %10s  %s\n", "clients", "orders", "orders/s", "p50", "p95", "p99", "POST p50", "latency: POST sent -> order_confirmed; POST p50: POST sent -> 201")
	for _, r := range rs {
		statuses := make([]string, 0, len(r.byStatus))
		for s, n := range r.byStatus {
			if s != "confirmed" {
				statuses = append(statuses, fmt.Sprintf("%d %s", n, s))
			}
		}
		sort.Strings(statuses)
		note := strings.Join(statuses, ", ")
		if r.errors > 0 {
			note += fmt.Sprintf(" %d failed POSTs, first: %.200s", r.errors, r.firstError)
		}
		fmt.Fprintf(w, "  %7d %7d %10.1f %10s %10s %10s %10s  %s\n", r.clients, len(r.orders), r.throughput,
			ms(r.p50), ms(r.p95), ms(r.p99), ms(r.postP50), note)
	}
	printStages(cfg, rs)
}

// printSaga prints what the orders of one phase cost.
func printSaga(cfg config, r sagaResult) {
	w := cfg.out
	fmt.Fprintf(w, "\nsaga at %d clients: %.1f orders/s at steady state (%d confirmed in the %.1f s after a warm-up; %d orders in %.1f s in all)\n",
		r.clients, r.throughput, r.inWindow, r.window.Seconds(), len(r.orders), r.elapsed.Seconds())
	types := make([]string, 0, len(r.eventsByType))
	for t := range r.eventsByType {
		types = append(types, t)
	}
	sort.Strings(types)
	var parts []string
	for _, t := range types {
		parts = append(parts, fmt.Sprintf("%s %.2f", t[strings.LastIndex(t, ".")+1:], r.eventsByType[t]))
	}
	fmt.Fprintf(w, "  events per order              %.2f (%s), ~%d B body + %d B headers each\n", r.eventsPerOrder, strings.Join(parts, ", "), r.avgEventBytes, r.avgHeaderBytes)
	fmt.Fprintf(w, "  broker deliveries per order   %.1f (%.2f events x %d queues: every queue receives every event)\n", r.deliveriesPerOrder, r.eventsPerOrder, r.queues)
	fmt.Fprintf(w, "  write commits per order       %.2f = 1 POST + %.2f handler transactions (inbox rows) + %.2f mark batches (distinct sent_at: fast-path marks and relay sweeps)\n",
		r.writeCommitsPerOrder, r.handledPerOrder, r.batchesPerOrder)
	fmt.Fprintf(w, "  Com_commit per order          %.2f (MariaDB, server-wide: also read-only commits such as idle relay polls, and anything else on this server)\n", r.commitsPerOrder)
	kinds := make([]string, 0, len(r.statementsByKind))
	for k := range r.statementsByKind {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return r.statementsByKind[kinds[i]] > r.statementsByKind[kinds[j]] })
	var byKind []string
	for _, k := range kinds {
		byKind = append(byKind, fmt.Sprintf("%s %.1f", k, r.statementsByKind[k]))
	}
	fmt.Fprintf(w, "  statements per order          %.1f (MariaDB Questions, server-wide): %s\n", r.statementsPerOrder, strings.Join(byKind, ", "))
	var cpu []string
	total := 0.0
	for i, name := range r.cpuNames {
		if v := r.cpuPerOrder[i]; v >= 0 {
			cpu = append(cpu, fmt.Sprintf("%s %.2f", name, v))
			total += v
		}
	}
	fmt.Fprintf(w, "  CPU per order (ms)            %s; sum %.1f, whole machine %.1f (* server-wide)\n", strings.Join(cpu, ", "), total, r.machineCPUPerOrder)
	fmt.Fprintf(w, "  background load               %.0f%% of the CPUs used by processes outside the platform and the bench during the run; %.0f%% stolen by the hypervisor\n", 100*r.background, 100*r.steal)
}

// stage is one step of an order's way to confirmed, timed from the
// timestamps the services write: outbox created_at (the event was enqueued
// in its transaction) and sent_at (the broker confirmed it), inbox
// handled_at (a handler's transaction began).
type stage struct {
	name string
	d    []time.Duration
}

// stages breaks the latency of the confirmed orders placed after warmEnd
// down into the saga's hops, from the services' own tables.
func stages(ctx context.Context, p *platform, all []placed, warmEnd time.Time) ([]stage, error) {
	type outRow struct {
		UUID    string     `db:"uuid"`
		Type    string     `db:"type"`
		Body    []byte     `db:"body"`
		Created time.Time  `db:"created_at"`
		Sent    *time.Time `db:"sent_at"`
	}
	type event struct {
		uuid          string
		created, sent time.Time
	}
	// events[type][order id]
	events := map[string]map[string]event{}
	handled := map[string]time.Time{} // "<dir>/<uuid>" -> handled_at
	want := map[string]string{        // type -> JSON path of the order id
		"sales.orders.order_placed":          "order.id",
		"sales.orders.order_confirmed":       "order.id",
		"logistics.inventory.stock_reserved": "reservation.order_id",
		"finance.payments.payment_captured":  "payment.order_id",
	}
	for _, s := range p.withQueue() {
		var rows []outRow
		if err := s.db.SelectContext(ctx, &rows, `SELECT uuid, type, body, created_at, sent_at FROM eventbus_outbox
			WHERE type IN ('sales.orders.order_placed', 'sales.orders.order_confirmed', 'logistics.inventory.stock_reserved', 'finance.payments.payment_captured')`); err != nil {
			return nil, err
		}
		for _, r := range rows {
			var m map[string]json.RawMessage
			if json.Unmarshal(r.Body, &m) != nil {
				continue
			}
			entity, field, _ := strings.Cut(want[r.Type], ".")
			var e map[string]json.RawMessage
			var id string
			if json.Unmarshal(m[entity], &e) != nil || json.Unmarshal(e[field], &id) != nil {
				continue
			}
			if events[r.Type] == nil {
				events[r.Type] = map[string]event{}
			}
			ev := event{uuid: r.UUID, created: r.Created}
			if r.Sent != nil {
				ev.sent = *r.Sent
			}
			events[r.Type][id] = ev
		}
		var in []struct {
			UUID    string    `db:"uuid"`
			Handled time.Time `db:"handled_at"`
		}
		if err := s.db.SelectContext(ctx, &in, `SELECT uuid, handled_at FROM eventbus_inbox
			WHERE type IN ('sales.orders.order_placed', 'logistics.inventory.stock_reserved', 'finance.payments.payment_captured')`); err != nil {
			return nil, err
		}
		for _, r := range in {
			handled[s.dir+"/"+r.UUID] = r.Handled
		}
	}
	out := []stage{
		{name: "POST -> order_placed enqueued (orders API transaction)"},
		{name: "order_placed enqueued -> confirmed by the broker (commit, publish)"},
		{name: "order_placed confirmed -> inventory handler starts (*)"},
		{name: "inventory handler -> stock_reserved enqueued"},
		{name: "stock_reserved enqueued -> confirmed by the broker"},
		{name: "stock_reserved confirmed -> payments handler starts (*)"},
		{name: "payments handler -> payment_captured enqueued"},
		{name: "payment_captured enqueued -> confirmed by the broker"},
		{name: "payment_captured confirmed -> orders handler starts (*)"},
		{name: "orders handler -> order_confirmed enqueued"},
	}
	for _, o := range all {
		if o.status != "confirmed" || o.start.Before(warmEnd) {
			continue
		}
		placedEv, ok1 := events["sales.orders.order_placed"][o.id]
		reserved, ok2 := events["logistics.inventory.stock_reserved"][o.id]
		captured, ok3 := events["finance.payments.payment_captured"][o.id]
		confirmed, ok4 := events["sales.orders.order_confirmed"][o.id]
		invAt, ok5 := handled["inventory/"+placedEv.uuid]
		payAt, ok6 := handled["payments/"+reserved.uuid]
		ordAt, ok7 := handled["orders/"+captured.uuid]
		if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
			continue
		}
		ts := []time.Time{o.start, placedEv.created, placedEv.sent, invAt, reserved.created, reserved.sent, payAt,
			captured.created, captured.sent, ordAt, confirmed.created}
		for i := range out {
			out[i].d = append(out[i].d, ts[i+1].Sub(ts[i]))
		}
	}
	return out, nil
}

// printStages prints the p50 of every stage for each phase, side by side.
func printStages(cfg config, rs []sagaResult) {
	if len(rs) == 0 || len(rs[0].stages) == 0 {
		return
	}
	w := cfg.out
	fmt.Fprintf(w, "  where the time goes: p50 per stage, from the services' outbox and inbox timestamps (orders placed after the warm-up)\n")
	fmt.Fprintf(w, "    %-70s", "clients:")
	for _, r := range rs {
		fmt.Fprintf(w, " %9d", r.clients)
	}
	fmt.Fprintln(w)
	for i, st := range rs[0].stages {
		fmt.Fprintf(w, "    %-70s", st.name)
		for _, r := range rs {
			fmt.Fprintf(w, " %9s", ms(percentile(r.stages[i].d, 0.5)))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "    (*) sent_at is stamped with the last confirm of a batch (of the fast path's marks, or of a relay sweep): a handler may start before it\n")
}
