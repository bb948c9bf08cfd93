package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/authclient"
	"github.com/sagittarius-a/sagittarius/internal/platform"
)

// faultInject is the FAULT_INJECT payments starts with (services/payments/faults.go).
var faultInject = "FAULT_INJECT=fail-charge=" + tokenFault + ",flaky-charge=" + tokenFlaky

// chaos is one run: the platform, the shopper, and what was reported.
type chaos struct {
	o      options
	out    io.Writer
	p      *platform.Platform
	c      *client
	shop   *shopper
	dir    string
	ownDir bool
	start  time.Time

	consumers   map[string][]string // event type -> services that handle it (loadConsumers)
	collections map[string]string   // service dir -> a paginated collection (loadCollections)

	mu       sync.Mutex
	poison   []deadLetter    // injected poison messages
	reported map[string]bool // violations already printed
	all      []violation     // every violation, printed once
}

func newChaos(ctx context.Context, o options, out io.Writer) (*chaos, error) {
	c := &chaos{o: o, out: out, c: newClient(20 * time.Second), reported: map[string]bool{}, start: time.Now()}
	consumers, err := loadConsumers(o.root)
	if err != nil {
		return nil, err
	}
	c.consumers = consumers
	lines, err := platform.ReadServices(o.root)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, l := range lines {
		if l.HasQueue() {
			dirs = append(dirs, l.Dir)
		}
	}
	if c.collections, err = loadCollections(o.root, dirs); err != nil {
		return nil, err
	}
	c.dir = o.dataDir
	if c.dir == "" {
		d, err := os.MkdirTemp("", "sagittarius-chaos-")
		if err != nil {
			return nil, err
		}
		c.dir, c.ownDir = d, true
	} else if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, err
	}
	// The broker runs as user rabbitmq: it must reach its folder.
	if err := os.Chmod(c.dir, 0o755); err != nil {
		return nil, err
	}
	form := "long"
	if o.short {
		form = "short"
	}
	c.say("chaos (%s form): starting a private platform under %s (seed %d)", form, c.dir, o.seed)
	var logw io.Writer = io.Discard
	if o.verbose {
		logw = out
	}
	cfg := platform.Config{
		Root: o.root, Dir: c.dir, QueueType: o.queueType, Race: o.race, Proxies: true, Log: logw,
		Env: map[string][]string{"payments": {faultInject}},
	}
	if o.cluster {
		cfg.Nodes, cfg.Instances = 3, 2 // implies quorum queues, no proxies
	}
	p, err := platform.Start(ctx, cfg)
	if err != nil {
		c.cleanup(false)
		return nil, err
	}
	c.p = p
	// The shopper acts as staff (the identity service's demo client); the
	// failed messages are read and retried as the operator.
	c.c.http.Transport = byRole{
		staff:    &authclient.Transport{Source: p.StaffToken, Next: c.c.http.Transport},
		operator: &authclient.Transport{Source: p.OperatorToken, Next: c.c.http.Transport},
	}
	c.shop = newShopper(p.Gateway, c.c, o.seed, c.debugf)
	return c, nil
}

func (c *chaos) say(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, format+"\n", args...)
}

func (c *chaos) debugf(format string, args ...any) {
	if c.o.verbose {
		c.say("    "+format, args...)
	}
}

// run runs the scenarios, the final check, and stops the platform.
func (c *chaos) run(ctx context.Context) (err error) {
	ok, final := false, ""
	defer func() {
		if cerr := c.p.Close(); cerr != nil {
			c.say("stopping the platform: %v", cerr)
			ok = false
			if err == nil {
				err = errViolations
			}
		}
		c.cleanup(ok)
		if final != "" {
			c.say("%s", final) // the last line, whatever happened before
		}
	}()
	links := "every service behind its own proxy to the broker"
	if c.o.cluster {
		links = "every service's AMQP_URL listing every node"
	}
	c.say("platform up in %v: gateway %s, MariaDB :%d, RabbitMQ %s (AMQP :%d), %s queues, %s",
		time.Since(c.start).Round(time.Second), c.p.Gateway, c.p.DB.Port, c.p.Broker.Name, c.p.Broker.AMQPPort, c.o.queueType, links)
	if c.o.cluster {
		c.say("%s", c.clusterSummary())
		what, problems, err := c.queueReplicas(ctx)
		if err != nil {
			return err
		}
		c.say("%s", what)
		if fresh := c.record(problems); len(fresh) > 0 {
			for _, v := range fresh {
				c.say("      %s", v)
			}
		}
	}

	scarce := int64(60)
	if c.o.short {
		scarce = 25
	}
	t := time.Now()
	if err := c.shop.setup(ctx, 10, 6, 1_000_000, scarce); err != nil {
		return fmt.Errorf("setting up customers and products: %w", err)
	}
	if _, err := c.quiesce(ctx, 2*time.Minute); err != nil {
		return err
	}
	c.say("catalog: %d customers, %d products with ample stock, 1 with %d units, 1 without stock (%v)",
		len(c.shop.cat.customers), len(c.shop.cat.plenty), scarce, time.Since(t).Round(100*time.Millisecond))

	for i, name := range c.o.scenarios {
		if err := c.scenario(ctx, i+1, findScenario(name)); err != nil {
			c.say("aborting: %v", err)
			return errViolations
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	r, err := c.checkNow(ctx)
	if err != nil {
		return err
	}
	if fresh := c.record(r.Violations); len(fresh) > 0 {
		c.say("final check:")
		for _, v := range fresh {
			c.say("      %s", v)
		}
	}
	final = fmt.Sprintf("%d orders, %d lost, %d duplicated effects, %d dead-lettered", r.Orders, r.count(kindLost), r.count(kindDuplicate), r.DeadLettered)
	c.mu.Lock()
	total := len(c.all)
	c.mu.Unlock()
	if total > 0 {
		c.say("FAIL: %d violations (see above), %v in all", total, time.Since(c.start).Round(time.Second))
		return errViolations
	}
	c.say("PASS: every scenario, %v in all", time.Since(c.start).Round(time.Second))
	ok = true
	return nil
}

// cleanup removes the data folder if the run passed and it is ours.
func (c *chaos) cleanup(passed bool) {
	if passed && c.ownDir && !c.o.keep {
		_ = os.RemoveAll(c.dir)
		return
	}
	if c.p != nil {
		c.say("data and logs kept in %s (service logs: %s)", c.dir, c.p.LogDir())
	}
}

// scenario runs one scenario under load, waits for quiescence and checks.
func (c *chaos) scenario(ctx context.Context, n int, sc *scenarioDef) error {
	start := time.Now()
	before := len(c.shop.records())
	stop := make(chan struct{})
	placed := make(chan int, 1)
	go func() { placed <- c.shop.stream(ctx, sc.name, c.o.rate, c.o.orders, stop) }()
	time.Sleep(2 * time.Second) // the stream is flowing when the fault comes
	detail, problems, err := sc.run(ctx, c)
	close(stop)
	count := <-placed
	c.shop.wait()
	if err != nil {
		c.say("%d %-16s FAIL  %v", n, sc.name, err)
		return err
	}
	quiet, qerr := c.quiesce(ctx, 4*time.Minute)
	if qerr != nil {
		problems = append(problems, violation{kindLost, qerr.Error()})
	}
	r, err := c.checkNow(ctx)
	if err != nil {
		return err
	}
	fresh := c.record(append(problems, r.Violations...))
	status := "ok  "
	if len(fresh) > 0 {
		status = "FAIL"
	}
	total := len(c.shop.records())
	c.say("%d %-16s %s %d orders (%d in all, %d placed during it), %s; quiescent %.1fs later; %v",
		n, sc.name, status, total-before, total, count, detail, quiet.Seconds(), time.Since(start).Round(time.Second))
	for i, v := range fresh {
		if i == 40 {
			c.say("      … and %d more", len(fresh)-i)
			break
		}
		c.say("      %s", v)
	}
	return nil
}

// record remembers violations and returns the ones not reported before.
func (c *chaos) record(vs []violation) []violation {
	c.mu.Lock()
	defer c.mu.Unlock()
	var fresh []violation
	for _, v := range vs {
		if c.reported[v.String()] {
			continue
		}
		c.reported[v.String()] = true
		c.all = append(c.all, v)
		fresh = append(fresh, v)
	}
	return fresh
}

// checkNow collects a snapshot and checks it, adding what the client and the
// processes showed: 500 answers, instances that died on their own, queues
// without their consumers.
func (c *chaos) checkNow(ctx context.Context) (report, error) {
	var s snapshot
	var err error
	for try := 0; try < 5; try++ { // a read may meet a fault's tail end
		if s, err = collect(ctx, c.p, c.c); err == nil {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if err != nil {
		return report{}, fmt.Errorf("reading the platform's state: %w", err)
	}
	r := check(s, c.expectation())
	for _, e := range c.c.takeServerErrors() {
		r.Violations = append(r.Violations, violation{kindInvariant, "HTTP 500 (a fault must give 503): " + e})
	}
	for _, svc := range append(c.p.Services(), c.p.Service("gateway")) {
		for _, in := range svc.All() {
			if in.Exited() && !in.Killed() {
				r.Violations = append(r.Violations, violation{kindInvariant, fmt.Sprintf("%s exited on its own (log %s)", in, in.Log)})
			}
			if b, err := os.ReadFile(in.Log); err == nil {
				for _, bad := range []string{"WARNING: DATA RACE", "panic: ", "fatal error: ", "panic in handler", "handler panicked"} {
					if bytes.Contains(b, []byte(bad)) {
						r.Violations = append(r.Violations, violation{kindInvariant, fmt.Sprintf("%s logged %q (log %s)", in, bad, in.Log)})
					}
				}
			}
		}
	}
	qs, err := c.p.Broker.Queues(ctx, c.p.Vhost)
	if err != nil {
		return r, err
	}
	consumers := map[string]int{}
	for _, q := range qs {
		consumers[q.Name] = q.Consumers
	}
	for _, svc := range c.p.Services() {
		if n, want := consumers[svc.Name], len(svc.Instances()); n != want {
			r.Violations = append(r.Violations, violation{kindInvariant, fmt.Sprintf("queue %s has %d consumers, %d instances run", svc.Name, n, want)})
		}
	}
	return r, nil
}

// expectation gathers what the shopper and the scenarios did.
func (c *chaos) expectation() expectation {
	e := expectation{Consumers: c.consumers}
	for _, r := range c.shop.records() {
		r.mu.Lock()
		e.Orders = append(e.Orders, orderExpect{N: r.N, Scenario: r.Scenario, Plan: r.Plan, ID: r.ID, PlaceErr: r.PlaceErr,
			Cancel: r.Cancel, Dispatch: r.Dispatch, Deliver: r.Deliver, JourneyErr: r.JourneyErr})
		r.mu.Unlock()
	}
	e.Replenished, e.Ambiguous = c.shop.stock()
	e.Products = append(append([]string{}, c.shop.cat.plenty...), c.shop.cat.scarce, c.shop.cat.soldOut)
	c.mu.Lock()
	e.Poison = append([]deadLetter(nil), c.poison...)
	c.mu.Unlock()
	return e
}

// quiesce waits until the platform is still: no message in any queue (the
// dead-letter queues included: the keepers drain them), no unsent outbox row, and the outboxes and inboxes
// unchanged over 3 s (longer than the management API's statistics lag). It
// returns how long that took.
func (c *chaos) quiesce(ctx context.Context, within time.Duration) (time.Duration, error) {
	start := time.Now()
	stable, last := 0, ""
	for {
		state, busy, err := c.activity(ctx)
		if err == nil && !busy && state == last {
			stable++
		} else {
			stable = 0
		}
		last = state
		if stable >= 4 {
			return time.Since(start) - 3*time.Second, nil
		}
		if time.Since(start) > within {
			return time.Since(start), fmt.Errorf("not quiescent after %v: %s %v", within, state, err)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(750 * time.Millisecond):
		}
	}
}

// activity describes the platform's queues and outboxes/inboxes.
func (c *chaos) activity(ctx context.Context) (state string, busy bool, err error) {
	qs, err := c.p.Broker.Queues(ctx, c.p.Vhost)
	if err != nil {
		return "", true, err
	}
	var parts []string
	for _, q := range qs {
		// Dead-letter queues too: each service's keeper moves their
		// messages into its failed messages, so they drain as well.
		if q.Messages > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", q.Name, q.Messages))
			busy = true
		}
	}
	sort.Strings(parts)
	for _, svc := range c.p.Services() {
		db, err := c.p.ServiceDB(svc.Dir)
		if err != nil {
			return "", true, err
		}
		var n struct {
			Pending int `db:"pending"`
			Total   int `db:"total"`
			Inbox   int `db:"inbox"`
		}
		if err := db.GetContext(ctx, &n, `SELECT
			(SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL) AS pending,
			(SELECT COUNT(*) FROM eventbus_outbox) AS total,
			(SELECT COUNT(*) FROM eventbus_inbox) AS inbox`); err != nil {
			return "", true, err
		}
		if n.Pending > 0 {
			busy = true
		}
		parts = append(parts, fmt.Sprintf("%s:%d/%d/%d", svc.Dir, n.Pending, n.Total, n.Inbox))
	}
	return "queues " + strings.Join(parts, " "), busy, nil
}

// waitHealthy waits until every running instance answers /health 200.
func (c *chaos) waitHealthy(ctx context.Context, within time.Duration) error {
	var errs []error
	for _, svc := range append(c.p.Services(), c.p.Service("gateway")) {
		for _, in := range svc.Instances() {
			if err := in.WaitHealthy(ctx, within); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// byRole sends the failed-messages requests (the operator's) with the
// operator's token and every other request with the staff token.
type byRole struct{ staff, operator http.RoundTripper }

func (b byRole) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/failed-message") {
		return b.operator.RoundTrip(r)
	}
	return b.staff.RoundTrip(r)
}
