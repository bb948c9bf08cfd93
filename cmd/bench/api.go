package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// readLoad runs `clients` goroutines GETting url for d and returns answers
// per second. Any status but 200 fails the run.
func readLoad(ctx context.Context, client *http.Client, url string, clients int, d time.Duration) (float64, int64, error) {
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	stop := start.Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && ctx.Err() == nil {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if err != nil {
					errs <- err
					return
				}
				req.Header.Set("Accept", "application/hal+json")
				res, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				_, err = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				if res.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("GET %s: %d", url, res.StatusCode)
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
		return 0, 0, err
	}
	return rate(int(n.Load()), elapsed), n.Load(), nil
}

// cpuTally adds up the CPU time (in clock ticks) the measured processes and
// the benchmark itself spend on one side of a comparison, and its requests.
type cpuTally struct {
	ticks    []int64 // per process of the meter
	self     int64   // this benchmark process (the clients)
	requests int64
}

func (c *cpuTally) measure(m *cpuMeter, run func() (float64, int64, error)) (float64, error) {
	before, selfBefore := m.read(), selfTicks()
	r, n, err := run()
	after, selfAfter := m.read(), selfTicks()
	if c.ticks == nil {
		c.ticks = make([]int64, len(before))
	}
	for i := range before {
		if before[i] >= 0 && after[i] >= 0 {
			c.ticks[i] += after[i] - before[i]
		}
	}
	c.self += selfAfter - selfBefore
	c.requests += n
	return r, err
}

func selfTicks() int64 {
	t, _ := cpuTicks(os.Getpid())
	return t
}

// apiResult is one comparison with the CPU each side cost per request.
type apiResult struct {
	result
	direct, gateway cpuTally
}

// benchAPI compares reads through the gateway with the same handler called
// on the service's own port: one order, and the first page of the orders
// collection (20 orders, newest first). The single order is also read through
// a bare reverse proxy (bareproxy.go), the reference for what any Go proxy
// costs on this machine.
func benchAPI(ctx context.Context, cfg config, p *platform, orderID string, meter *cpuMeter) ([]apiResult, error) {
	orders := p.service("orders")
	client := withToken(httpClient(cfg.apiClients), p)
	bare, err := startBareProxy(ctx, orders.url)
	if err != nil {
		return nil, err
	}
	defer bare.stop()
	meter.names, meter.pids = append(meter.names, "bare proxy"), append(meter.pids, bare.cmd.Process.Pid)
	paths := []struct {
		name, path, via, viaName string
		target                   float64
	}{
		{"GET /v1/orders/{id}", "/v1/orders/" + orderID, p.gateway.url, "via gateway", 0.8},
		{"GET /v1/orders/{id}", "/v1/orders/" + orderID, bare.url, "via bare proxy", 0},
		{"GET /v1/orders?size=20 (first page)", "/v1/orders?size=20", p.gateway.url, "via gateway", 0.8},
	}
	var results []apiResult
	for _, pt := range paths {
		var ar apiResult
		direct := func() (float64, error) {
			return ar.direct.measure(meter, func() (float64, int64, error) {
				return readLoad(ctx, client, orders.url+pt.path, cfg.apiClients, cfg.apiDuration)
			})
		}
		via := func() (float64, error) {
			return ar.gateway.measure(meter, func() (float64, int64, error) {
				return readLoad(ctx, client, pt.via+"/orders"+pt.path, cfg.apiClients, cfg.apiDuration)
			})
		}
		// Warm both paths (connections, caches) before timing.
		for _, base := range []string{orders.url, pt.via + "/orders"} {
			if _, _, err := readLoad(ctx, client, base+pt.path, cfg.apiClients, 300*time.Millisecond); err != nil {
				return nil, err
			}
		}
		r, err := compare(cfg, pt.name+" "+pt.viaName, "same, direct to orders", pt.target, direct, via)
		if err != nil {
			return nil, err
		}
		ar.result = r
		results = append(results, ar)
	}
	return results, nil
}

// printAPICPU prints the CPU one request cost each process, on each side.
func printAPICPU(cfg config, meter *cpuMeter, rs []apiResult) {
	w := cfg.out
	fmt.Fprintf(w, "  CPU per request (µs; * server-wide), direct -> via the proxy:\n")
	for _, r := range rs {
		var parts []string
		per := func(t cpuTally, ticks int64) float64 {
			if t.requests == 0 {
				return 0
			}
			return float64(ticks) * 10_000 / float64(t.requests) // a tick is 10 ms
		}
		for i, name := range meter.names {
			d, g := per(r.direct, r.direct.ticks[i]), per(r.gateway, r.gateway.ticks[i])
			if d+g >= 1 {
				parts = append(parts, fmt.Sprintf("%s %.0f -> %.0f", name, d, g))
			}
		}
		parts = append(parts, fmt.Sprintf("clients %.0f -> %.0f", per(r.direct, r.direct.self), per(r.gateway, r.gateway.self)))
		fmt.Fprintf(w, "    %-36s %s\n", r.name, strings.Join(parts, ", "))
	}
}
