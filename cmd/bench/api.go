package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// readLoad runs `clients` goroutines GETting url for d and returns answers
// per second. Any status but 200 fails the run.
func readLoad(ctx context.Context, client *http.Client, url string, clients int, d time.Duration) (float64, error) {
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
		return 0, err
	}
	return rate(int(n.Load()), elapsed), nil
}

// benchAPI compares reads through the gateway with the same handler called
// on the service's own port: one order, and the first page of the orders
// collection (20 orders, newest first).
func benchAPI(ctx context.Context, cfg config, p *platform, orderID string) ([]result, error) {
	orders := p.service("orders")
	client := httpClient(cfg.apiClients)
	paths := []struct{ name, path string }{
		{"GET /v1/orders/{id}", "/v1/orders/" + orderID},
		{"GET /v1/orders?size=20 (first page)", "/v1/orders?size=20"},
	}
	var results []result
	for _, pt := range paths {
		direct := func() (float64, error) {
			return readLoad(ctx, client, orders.url+pt.path, cfg.apiClients, cfg.apiDuration)
		}
		viaGateway := func() (float64, error) {
			return readLoad(ctx, client, p.gateway.url+"/orders"+pt.path, cfg.apiClients, cfg.apiDuration)
		}
		// Warm both paths (connections, caches) before timing.
		if _, err := readLoad(ctx, client, orders.url+pt.path, cfg.apiClients, 300*time.Millisecond); err != nil {
			return nil, err
		}
		if _, err := readLoad(ctx, client, p.gateway.url+"/orders"+pt.path, cfg.apiClients, 300*time.Millisecond); err != nil {
			return nil, err
		}
		r, err := compare(cfg, pt.name+" via gateway", "same, direct to orders", 0.8, direct, viaGateway)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	return results, nil
}
