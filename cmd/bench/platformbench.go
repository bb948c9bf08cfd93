package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// benchPlatform starts one platform and runs the saga suite (with the
// limits) and/or the api suite on it, tracking every service's memory.
func benchPlatform(ctx context.Context, cfg config, saga, api bool) (err error) {
	fmt.Fprintf(cfg.out, "\nstarting a platform instance for the benchmark (services built from %s, fresh databases and vhost, free ports)\n", cfg.root)
	p, err := startPlatform(ctx, cfg)
	if err != nil {
		return fmt.Errorf("platform: %w", err)
	}
	defer func() {
		if crashed := p.stop(); len(crashed) > 0 && err == nil {
			err = fmt.Errorf("services exited during the benchmark:\n%s", strings.Join(crashed, "\n"))
		}
	}()
	if cfg.pprofBase > 0 {
		for i, s := range p.services {
			fmt.Fprintf(cfg.out, "  %-10s %s  pprof http://127.0.0.1:%d/debug/pprof/\n", s.dir, s.url, cfg.pprofBase+i)
		}
	}
	client := withToken(httpClient(max(slices.Max(cfg.sagaClients), cfg.apiClients)), p)
	fx, err := setupSaga(ctx, p, cfg.saga, client)
	if err != nil {
		return fmt.Errorf("saga setup: %w", err)
	}
	cpu := newCPUMeter(cfg, p)
	mem := newMemory()
	time.Sleep(2 * time.Second)
	mem.snapshotRest(p)

	var phases []sagaResult
	if saga {
		for _, c := range cfg.sagaClients {
			sc := cfg.saga
			sc.clients = c
			stopSampling := mem.sampleWhile(p)
			r, err := runSaga(ctx, p, sc, fx, client, cpu)
			stopSampling()
			if err != nil {
				return fmt.Errorf("saga with %d clients: %w", c, err)
			}
			phases = append(phases, r)
		}
	} else {
		// The api suite reads orders: place a few first.
		sc := cfg.saga
		sc.clients, sc.orders, sc.warmup, sc.duration = 8, 200, 0, time.Minute
		stopSampling := mem.sampleWhile(p)
		r, err := runSaga(ctx, p, sc, fx, client, cpu)
		stopSampling()
		if err != nil {
			return fmt.Errorf("saga: %w", err)
		}
		phases = append(phases, r)
	}
	best := phases[0]
	for _, r := range phases {
		if r.throughput > best.throughput {
			best = r
		}
	}
	if saga {
		printSagaPhases(cfg, phases)
		printSaga(cfg, best)
		l, err := measureLimits(ctx, cfg, best, len(p.withQueue()), cpu)
		if err != nil {
			return fmt.Errorf("limits: %w", err)
		}
		printLimits(cfg, best, l)
	}
	if api {
		var id string
		for _, o := range best.orders {
			if o.status == "confirmed" {
				id = o.id
				break
			}
		}
		if id == "" {
			return errors.New("api: no confirmed order to read")
		}
		stopSampling := mem.sampleWhile(p)
		rs, err := benchAPI(ctx, cfg, p, id, cpu)
		stopSampling()
		if err != nil {
			return fmt.Errorf("api: %w", err)
		}
		var plain []result
		for _, r := range rs {
			plain = append(plain, r.result)
		}
		printResults(cfg.out, fmt.Sprintf("REST reads (%d concurrent clients, %v per run, keep-alive)", cfg.apiClients, cfg.apiDuration), plain)
		printAPICPU(cfg, cpu, rs)
	}
	printMemory(cfg, p, mem)
	if cfg.keep > 0 {
		fmt.Fprintf(cfg.out, "\nkeeping the platform up for %v (gateway %s)\n", cfg.keep, p.gateway.url)
		select {
		case <-ctx.Done():
		case <-time.After(cfg.keep):
		}
	}
	return nil
}

func printMemory(cfg config, p *platform, m *memory) {
	w := cfg.out
	fmt.Fprintf(w, "\nresident memory (VmRSS of /proc/<pid>/status; at rest after setup, peak sampled every 100 ms under load)\n")
	fmt.Fprintf(w, "  %-10s %10s %10s  %s\n", "service", "at rest", "peak", "target <= 50 MB")
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range p.services {
		peak := m.peak[s.dir]
		verdict := "met"
		if peak > 50*1024 {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "  %-10s %7.1f MB %7.1f MB  %s\n", s.dir, float64(m.rest[s.dir])/1024, float64(peak)/1024, verdict)
	}
}
