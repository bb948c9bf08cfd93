package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/authclient"
	"github.com/sagittarius-a/sagittarius/internal/platform"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

// scenarioDef is one fault scenario. run injects the fault while the shopper's
// stream flows, recovers from it, and returns a one-line description, the
// violations it saw itself (e.g. a wrong answer during an outage), or an error
// when the platform could not be brought back (which ends the run).
type scenarioDef struct {
	name string
	run  func(ctx context.Context, c *chaos) (detail string, problems []violation, err error)
}

var scenarioList = []scenarioDef{
	{"baseline", baseline},
	{"broker-kill", brokerKill},
	{"service-kill", serviceKill},
	{"two-instances", twoInstances},
	{"database-restart", databaseRestart},
	{"broker-link", brokerLink},
	{"poison", poison},
	{"handler-fault", handlerFault},
}

func scenarioNames() []string {
	var out []string
	for _, s := range scenarioList {
		out = append(out, s.name)
	}
	return out
}

func findScenario(name string) *scenarioDef {
	for i := range scenarioList {
		if scenarioList[i].name == name {
			return &scenarioList[i]
		}
	}
	return findClusterScenario(name)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func baseline(ctx context.Context, c *chaos) (string, []violation, error) {
	return "no fault", nil, nil
}

// brokerKill kills the broker with SIGKILL several times while orders flow
// (they are accepted meanwhile: their events wait in the outboxes), and a
// replenishment is made while it is down.
func brokerKill(ctx context.Context, c *chaos) (string, []violation, error) {
	var downs []string
	for i := range c.o.brokerKill {
		if i > 0 {
			sleep(ctx, 4*time.Second)
		}
		t := time.Now()
		if err := c.p.Broker.Kill(ctx); err != nil {
			return "", nil, err
		}
		go func() { _ = c.shop.replenish(ctx, c.shop.cat.scarce, 5, false) }()
		sleep(ctx, 2*time.Second)
		if err := c.p.Broker.Start(ctx); err != nil {
			return "", nil, err
		}
		down := time.Since(t)
		if err := c.waitHealthy(ctx, 90*time.Second); err != nil {
			return "", nil, fmt.Errorf("after broker restart %d: %w", i+1, err)
		}
		downs = append(downs, fmt.Sprintf("%.0fs", down.Seconds()))
	}
	return fmt.Sprintf("broker SIGKILLed %d times (down %s; every service reconnected)", c.o.brokerKill, strings.Join(downs, ", ")), nil, nil
}

// serviceKill kills each service's process with SIGKILL right after a burst
// of work reached it (its relay has rows to publish, its handlers events to
// handle), and restarts it.
func serviceKill(ctx context.Context, c *chaos) (string, []violation, error) {
	rounds := 2
	if c.o.short {
		rounds = 1
	}
	var notes []string
	for round := range rounds {
		for _, svc := range append(c.p.Services(), c.p.Service("gateway")) { // scripts/services.conf's order, the gateway last
			dir := svc.Dir
			c.burst(ctx, dir)
			c.awaitBusy(ctx, svc)
			in := svc.Primary()
			if in == nil {
				return "", nil, fmt.Errorf("%s has no running primary instance", dir)
			}
			if err := in.Kill(); err != nil {
				return "", nil, err
			}
			note := dir
			if svc.Database != "" {
				if n, err := c.unsent(ctx, dir); err == nil && round == 0 {
					note = fmt.Sprintf("%s (%d unsent)", dir, n)
				}
			}
			if round == 0 {
				notes = append(notes, note)
			}
			sleep(ctx, 500*time.Millisecond)
			if _, err := svc.StartPrimary(ctx); err != nil {
				return "", nil, err
			}
			sleep(ctx, time.Second)
		}
	}
	return fmt.Sprintf("%d× each SIGKILLed while busy and restarted: %s", rounds, strings.Join(notes, ", ")), nil, nil
}

// burst gives service dir work to do at once: orders for the saga services,
// new customers or products for customers and catalog (their events feed the
// read models of orders and inventory).
func (c *chaos) burst(ctx context.Context, dir string) {
	switch dir {
	case "customers", "catalog":
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				path, body := "/customers/v1/customers", map[string]any{"email": fmt.Sprintf("burst-%d-%d@example.com", time.Now().UnixNano(), i), "name": "Burst"}
				if dir == "catalog" {
					path, body = "/catalog/v1/products", map[string]any{"sku": fmt.Sprintf("BURST-%d-%d", time.Now().UnixNano(), i),
						"name": "Burst widget", "description": "made by scripts/chaos", "price": map[string]any{"amount": 100, "currency": "EUR"}}
				}
				_, _ = c.c.do(ctx, http.MethodPost, c.p.Gateway+path, body, nil)
			})
		}
		wg.Wait()
	default:
		for range 12 {
			c.shop.start(ctx, c.shop.next("service-kill", mix[c.shop.jitter(len(mix))]))
		}
	}
}

// awaitBusy waits (up to 3 s) until the service has committed changes whose
// events its relay has not published yet: its handlers or API are busy and
// so is its relay. For the gateway it waits a moment.
func (c *chaos) awaitBusy(ctx context.Context, svc *platform.Service) {
	if svc.Database == "" {
		sleep(ctx, 150*time.Millisecond)
		return
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if n, err := c.unsent(ctx, svc.Dir); err == nil && n > 0 {
			return
		}
		sleep(ctx, 10*time.Millisecond)
	}
}

// unsent counts a service's unpublished outbox rows.
func (c *chaos) unsent(ctx context.Context, dir string) (int, error) {
	db, err := c.p.ServiceDB(dir)
	if err != nil {
		return 0, err
	}
	var n int
	err = db.GetContext(ctx, &n, `SELECT COUNT(*) FROM eventbus_outbox WHERE sent_at IS NULL`)
	return n, err
}

// twoInstances runs a second instance of services (same database and queue:
// competing consumers, two relays on one outbox), kills the primary with
// SIGKILL mid-load and restarts it, then kills the extra one.
func twoInstances(ctx context.Context, c *chaos) (string, []violation, error) {
	var dirs []string
	for _, svc := range c.p.Services() {
		dirs = append(dirs, svc.Dir)
	}
	if c.o.short {
		dirs = []string{"inventory", "payments"}
	}
	for _, dir := range dirs {
		svc := c.p.Service(dir)
		extra, err := svc.StartExtra(ctx)
		if err != nil {
			return "", nil, err
		}
		c.burst(ctx, dir)
		sleep(ctx, 3*time.Second)
		if err := svc.Primary().Kill(); err != nil {
			return "", nil, err
		}
		sleep(ctx, time.Second)
		if _, err := svc.StartPrimary(ctx); err != nil {
			return "", nil, err
		}
		c.burst(ctx, dir)
		sleep(ctx, 2*time.Second)
		if err := extra.Kill(); err != nil {
			return "", nil, err
		}
	}
	return fmt.Sprintf("2 instances of %s at once, the primary SIGKILLed mid-load and restarted, then the other", strings.Join(dirs, ", ")), nil, nil
}

// databaseRestart kills MariaDB with SIGKILL mid-load, checks that every API
// (directly, and through the gateway) answers 503 problem+json, quickly,
// while it is down, and restarts it.
func databaseRestart(ctx context.Context, c *chaos) (string, []violation, error) {
	c.burst(ctx, "orders") // events in flight when it goes: handlers fail and retry
	sleep(ctx, 300*time.Millisecond)
	t := time.Now()
	if err := c.p.DB.Kill(); err != nil {
		return "", nil, err
	}
	// With a token (taken before the database went: the identity service
	// cannot issue one now), so that each API answers what the outage does
	// to it, not 401.
	probe := &http.Client{Timeout: 5 * time.Second, Transport: &authclient.Transport{Source: c.p.StaffToken}}
	var (
		mu       sync.Mutex
		probes   int
		problems []violation
		seen     = map[string]bool{}
	)
	check := func(method, url string, body []byte) {
		req, _ := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := probe.Do(req)
		var what string
		switch {
		case err != nil:
			what = fmt.Sprintf("%s %s while the database was down: %v (want 503 problem+json within 5s)", method, url, err)
		default:
			resp.Body.Close()
			ct := resp.Header.Get("Content-Type")
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(ct, "application/problem+json") {
				what = fmt.Sprintf("%s %s while the database was down: %d %s (want 503 problem+json)", method, url, resp.StatusCode, ct)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		probes++
		key := method + " " + url
		if what != "" && !seen[key] {
			seen[key] = true
			problems = append(problems, violation{kindInvariant, what})
		}
	}
	order := []byte(`{"customer_id":"` + c.shop.cat.customers[0] + `","lines":[{"product_id":"` + c.shop.cat.plenty[0] +
		`","quantity":1}],"payment_method_id":"pm-probe","shipping_address":{"name":"Probe","line1":"1 Down Street","postal_code":"10115","city":"Berlin","country":"DE"}}`)
	for time.Since(t) < c.o.dbDown {
		var wg sync.WaitGroup
		for _, svc := range c.p.Services() {
			base := svc.Primary().URL()
			wg.Go(func() { check(http.MethodGet, base+c.collections[svc.Dir]+"?size=1", nil) })
			wg.Go(func() { check(http.MethodGet, base+"/health", nil) })
			wg.Go(func() { check(http.MethodGet, c.p.Gateway+"/"+svc.Dir+c.collections[svc.Dir]+"?size=1", nil) })
		}
		wg.Go(func() { check(http.MethodPost, c.p.Gateway+"/orders/v1/orders", order) })
		wg.Go(func() { check(http.MethodGet, c.p.Gateway+"/health", nil) })
		wg.Wait()
		sleep(ctx, time.Second)
	}
	down := time.Since(t)
	if err := c.p.DB.Start(ctx); err != nil {
		return "", nil, err
	}
	r := time.Now()
	if err := c.waitHealthy(ctx, 90*time.Second); err != nil {
		return "", nil, fmt.Errorf("after the database restart: %w", err)
	}
	healthy := time.Since(r)
	return fmt.Sprintf("MariaDB SIGKILLed, down %.0fs: %d probes of every API, %d not 503 problem+json; all healthy %.1fs after its restart",
		down.Seconds(), probes, len(problems), healthy.Seconds()), problems, nil
}

// brokerLink cuts, then black-holes, the link between services and the
// broker (their proxies), and restores it.
func brokerLink(ctx context.Context, c *chaos) (string, []violation, error) {
	var cuts []string
	for _, svc := range c.p.Services() {
		cuts = append(cuts, svc.Dir)
	}
	holes := []string{"orders", "inventory"}
	if c.o.short {
		cuts, holes = []string{"orders"}, []string{"payments"}
	}
	var notes []string
	for _, dir := range cuts {
		px := c.p.Service(dir).Proxy
		before, _ := px.Connections()
		px.Set(platform.Cut)
		sleep(ctx, 5*time.Second)
		px.Restore()
		if err := c.waitHealthy(ctx, 90*time.Second); err != nil {
			return "", nil, err
		}
		after, _ := px.Connections()
		notes = append(notes, fmt.Sprintf("cut %s 5s (%d connection attempts)", dir, after-before))
	}
	for _, dir := range holes {
		px := c.p.Service(dir).Proxy
		before, _ := px.Connections()
		c.burst(ctx, dir)
		px.Set(platform.Blackhole)
		sleep(ctx, c.o.blackhole)
		px.Restore()
		if err := c.waitHealthy(ctx, 90*time.Second); err != nil {
			return "", nil, err
		}
		after, _ := px.Connections()
		notes = append(notes, fmt.Sprintf("black-holed %s %.0fs (%d new connections)", dir, c.o.blackhole.Seconds(), after-before))
	}
	return strings.Join(notes, ", ") + "; restored", nil, nil
}

// poison publishes malformed events on sagittarius-a mid-load: each consumer
// of their type must dead-letter them with a reason and go on with the rest.
func poison(ctx context.Context, c *chaos) (string, []violation, error) {
	var kinds []string
	for _, m := range poisons() {
		id, err := publishPoison(ctx, c.p, m)
		if err != nil {
			return "", nil, err
		}
		c.mu.Lock()
		c.poison = append(c.poison, deadLetter{MessageID: id, Type: m.Type, Reason: m.Reason})
		c.mu.Unlock()
		kinds = append(kinds, m.Reason)
		sleep(ctx, time.Second)
	}
	sleep(ctx, 3*time.Second)
	return fmt.Sprintf("%d poison events on sagittarius-a (%s), each expected in the failed messages of %s",
		len(kinds), strings.Join(kinds, "; "), strings.Join(c.consumers["sales.orders.order_placed"], ", ")), nil, nil
}

// handlerFault places an order payments fails to charge permanently (it is
// dead-lettered; after a restart of payments without the fault the dead
// letter is replayed and the order confirmed) and one payments fails to
// charge twice (retried through the retry queues, then confirmed).
func handlerFault(ctx context.Context, c *chaos) (string, []violation, error) {
	fault := c.shop.next("handler-fault", planFault)
	flaky := c.shop.next("handler-fault", planFlaky)
	c.shop.start(ctx, fault)
	c.shop.start(ctx, flaky)
	var problems []violation
	id := func(r *orderRecord) string {
		for range 600 {
			r.mu.Lock()
			id, failed := r.ID, r.PlaceErr != ""
			r.mu.Unlock()
			if id != "" || failed {
				return id
			}
			sleep(ctx, 100*time.Millisecond)
		}
		return ""
	}
	faultID, flakyID := id(fault), id(flaky)
	if faultID == "" || flakyID == "" {
		return "", nil, fmt.Errorf("the fault orders were not placed: %q %q", fault.PlaceErr, flaky.PlaceErr)
	}

	// The permanent failure: dead-lettered at once, with the order in its
	// reason, and kept in payments' failed messages (read as an operator
	// would, through the gateway).
	t := time.Now()
	var failed failedMessage
	failedURL := c.p.Gateway + "/payments/v1/failed-messages?status=unresolved&size=100"
	for failed.ID == "" && time.Since(t) < 90*time.Second {
		_ = eachItem(ctx, c.c, failedURL, func(m failedMessage) {
			if strings.Contains(m.Reason, faultID) {
				failed = m
			}
		})
		sleep(ctx, 500*time.Millisecond)
	}
	reason := failed.Reason
	if failed.ID == "" {
		problems = append(problems, violation{kindInvariant, fmt.Sprintf("order %s: payments did not dead-letter the event it failed on permanently (not in its failed messages)", faultID)})
	}
	deadAfter := time.Since(t)

	// The transient failure: retried, then confirmed.
	o, ok := c.awaitStatus(ctx, flakyID, 90*time.Second)
	if !ok || !confirmedish(o.Status) {
		problems = append(problems, violation{kindInvariant, fmt.Sprintf("order %s (flaky payment): %q after 90s, want confirmed after retries", flakyID, o.Status)})
	}
	retries := 0
	for _, in := range c.p.Service("payments").All() {
		b, _ := os.ReadFile(in.Log)
		retries += bytes.Count(b, []byte("flaky-charge: the provider is unavailable for order "+flakyID))
	}
	if retries < 2 {
		problems = append(problems, violation{kindInvariant, fmt.Sprintf("order %s: %d flaky charges logged by payments, want 2 (the fault did not fire?)", flakyID, retries)})
	}

	// The repair: payments restarted without the fault, the dead letter replayed.
	payments := c.p.Service("payments")
	payments.SetEnv()
	if err := payments.Primary().Stop(20 * time.Second); err != nil {
		problems = append(problems, violation{kindInvariant, err.Error()})
	}
	if _, err := payments.StartPrimary(ctx); err != nil {
		return "", nil, err
	}
	replayed := 0
	if failed.ID != "" {
		op, err := c.retryFailed(ctx, "payments", failed.ID)
		if err != nil {
			problems = append(problems, violation{kindInvariant, fmt.Sprintf("order %s: retry of its failed message: %v", faultID, err)})
		}
		replayed = op.Succeeded
	}
	o, ok = c.awaitStatus(ctx, faultID, 90*time.Second)
	if !ok || !confirmedish(o.Status) {
		problems = append(problems, violation{kindInvariant, fmt.Sprintf("order %s: %q after its dead letter was replayed, want confirmed", faultID, o.Status)})
	}
	if failed.ID != "" && !c.awaitFailedStatus(ctx, "payments", failed.ID, "resolved", 60*time.Second) {
		problems = append(problems, violation{kindInvariant, fmt.Sprintf("order %s: its failed message %s is not resolved after the retry was handled", faultID, failed.ID)})
	}
	// Later scenarios run with the fault again.
	payments.SetEnv(faultInject)
	if i := strings.Index(reason, "permanent: "); i >= 0 {
		reason = reason[i:]
	}
	return fmt.Sprintf("order %s failed permanently in payments, dead-lettered in %.1fs (%q), %d retried through its failed-messages API after payments restarted without the fault: %s; "+
		"order %s failed twice (%d retries), %s", short(faultID), deadAfter.Seconds(), reason, replayed, o.Status, short(flakyID), retries, statusOf(ctx, c, flakyID)), problems, nil
}

// retryFailed retries one failed message of the service at dir through its
// API (POST failed-message-retries) and waits for the operation to complete.
func (c *chaos) retryFailed(ctx context.Context, dir, id string) (retryOp, error) {
	a, err := c.c.do(ctx, "POST", c.p.Gateway+"/"+dir+"/v1/failed-message-retries", map[string]any{"ids": []string{id}}, nil)
	if err != nil {
		return retryOp{}, err
	}
	if a.Status != 202 || a.Header.Get("Location") == "" {
		return retryOp{}, fmt.Errorf("POST failed-message-retries: %s", a)
	}
	loc := a.Header.Get("Location")
	deadline := time.Now().Add(60 * time.Second)
	for {
		var op retryOp
		if err := c.c.getJSON(ctx, loc, &op); err == nil && op.Status == "completed" {
			if op.Succeeded != op.Total {
				return op, fmt.Errorf("retry operation %s: %d of %d republished", op.ID, op.Succeeded, op.Total)
			}
			return op, nil
		}
		if time.Now().After(deadline) {
			return retryOp{}, fmt.Errorf("retry operation %s not completed within 60s", loc)
		}
		sleep(ctx, 250*time.Millisecond)
	}
}

// retryOp is what chaos reads of a retry operation.
type retryOp struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Total     int    `json:"total"`
	Succeeded int    `json:"succeeded"`
}

// awaitFailedStatus polls a failed message of the service at dir until it
// has status, and reports whether it did within the time given.
func (c *chaos) awaitFailedStatus(ctx context.Context, dir, id, status string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var m failedMessage
		if err := c.c.getJSON(ctx, c.p.Gateway+"/"+dir+"/v1/failed-messages/"+id, &m); err == nil && m.Status == status {
			return true
		}
		sleep(ctx, 250*time.Millisecond)
	}
	return false
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func statusOf(ctx context.Context, c *chaos, id string) string {
	var o orderevents.Order
	if err := c.c.getJSON(ctx, c.p.Gateway+"/orders/v1/orders/"+id, &o); err != nil {
		return err.Error()
	}
	return o.Status
}

// awaitStatus polls an order until it is no longer pending.
func (c *chaos) awaitStatus(ctx context.Context, id string, within time.Duration) (orderevents.Order, bool) {
	deadline := time.Now().Add(within)
	for {
		var o orderevents.Order
		err := c.c.getJSON(ctx, c.p.Gateway+"/orders/v1/orders/"+id, &o)
		if err == nil && o.Status != "pending" {
			return o, true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return o, false
		}
		sleep(ctx, 300*time.Millisecond)
	}
}
