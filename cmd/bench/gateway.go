package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Suite "gateway" (issue 12): item reads (GET /orders/v1/orders/{id})
// through the gateway, with its rate limiter on (limits too high to refuse
// anything: what is measured is its cost), against nginx (apt: nginx-light)
// configured here as a plain proxy_pass with keep-alive upstream
// connections to the same orders service, in the same run, alternating;
// medians. Then the gateway with the limiter against a second gateway
// instance without it: what the limiter costs. The CPU per request of each
// proxy comes from /proc/<pid>/stat (nginx: master and workers).
//
// Authentication: once the gateway verifies tokens, pass
// -gateway-env KEY=VALUE for its settings and -gateway-header
// "Authorization: Bearer <token>" for the clients' requests (sent to nginx
// too, which ignores it).

// gatewayLimitsOn are the limits of the measured gateway: on, but never
// refusing one client's load.
var gatewayLimitsOn = []string{"RATE_LIMIT_READS=100000000/s", "RATE_LIMIT_WRITES=100000000/s", "RATE_LIMIT_SIGNIN=100000000/s"}

// gatewayLimitsOff turns the limiter off entirely.
var gatewayLimitsOff = []string{"RATE_LIMIT_READS=off", "RATE_LIMIT_WRITES=off", "RATE_LIMIT_SIGNIN=off", "RATE_LIMIT_BACKOFF=off"}

// benchGateway runs the gateway suite on its own platform.
func benchGateway(ctx context.Context, cfg config) (err error) {
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			return errors.New("nginx is not installed (apt-get install nginx-light)")
		}
	}
	fmt.Fprintf(cfg.out, "\nstarting a platform instance for the gateway suite (services built from %s)\n", cfg.root)
	cfg.serviceEnv = append(cfg.serviceEnv, cfg.gatewayEnv...)
	p, err := startPlatform(ctx, cfg)
	if err != nil {
		return fmt.Errorf("platform: %w", err)
	}
	defer func() {
		if crashed := p.stop(); len(crashed) > 0 && err == nil {
			err = fmt.Errorf("services exited during the benchmark:\n%s", strings.Join(crashed, "\n"))
		}
	}()
	client := httpClient(cfg.apiClients)
	sc := cfg.saga
	sc.customers, sc.products, sc.lines, sc.clients, sc.orders, sc.warmup, sc.duration = 2, 4, 1, 4, 20, 0, time.Minute
	fx, err := setupSaga(ctx, p, sc, client)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	placed, err := runSaga(ctx, p, sc, fx, client, newCPUMeter(cfg, p))
	if err != nil || len(placed.orders) == 0 {
		return fmt.Errorf("placing orders to read: %v", err)
	}
	path := "/orders/v1/orders/" + placed.orders[0].id
	orders := p.service("orders")

	// The gateway without the limiter: a second instance of the same binary.
	gw := p.gateway.svc
	saved := gw.Env()
	gw.SetEnv(append(append(append(append([]string(nil), saved...), gatewayLimitsOff...), cfg.gatewayEnv...), "PPROF_ADDR=")...)
	off, err := gw.StartExtra(ctx)
	gw.SetEnv(saved...)
	if err != nil {
		return fmt.Errorf("gateway without limiter: %w", err)
	}
	defer func() { _ = off.Kill() }()

	ng, err := startNginx(ctx, orders.url)
	if err != nil {
		return err
	}
	defer ng.stop()

	type side struct {
		name string
		base string
		pids func() []int
		tally
	}
	sides := map[string]*side{
		"gateway": {name: "gateway (rate limits on)", base: p.gateway.url, pids: func() []int { return []int{p.gateway.pid()} }},
		"off":     {name: "gateway, no limiter", base: off.URL(), pids: func() []int { return []int{off.Pid()} }},
		"nginx":   {name: "nginx", base: ng.url, pids: ng.pids},
	}
	load := func(s *side) func() (float64, error) {
		return func() (float64, error) {
			before := pidTicks(s.pids())
			r, n, err := headerLoad(ctx, client, s.base+path, cfg.gatewayHeaders, cfg.apiClients, cfg.apiDuration)
			s.ticks += pidTicks(s.pids()) - before
			s.requests += n
			return r, err
		}
	}
	for _, s := range sides { // warm connections and caches
		if _, _, err := headerLoad(ctx, client, s.base+path, cfg.gatewayHeaders, cfg.apiClients, 300*time.Millisecond); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	vsNginx, err := compare(cfg, "GET /orders/v1/orders/{id} via gateway", "same via nginx", 0.9, load(sides["nginx"]), load(sides["gateway"]))
	if err != nil {
		return err
	}
	vsOff, err := compare(cfg, "same, gateway with the limiter", "gateway without limiter", 0, load(sides["off"]), load(sides["gateway"]))
	if err != nil {
		return err
	}
	printResults(cfg.out, fmt.Sprintf("gateway against nginx (%d concurrent clients, %v per run, keep-alive, %d runs each side alternating, medians)",
		cfg.apiClients, cfg.apiDuration, cfg.repeat), []result{vsNginx, vsOff})
	fmt.Fprintf(cfg.out, "  CPU per request (µs, user+system of the proxy's processes over every run):\n")
	for _, k := range []string{"nginx", "gateway", "off"} {
		s := sides[k]
		fmt.Fprintf(cfg.out, "    %-28s %6.1f\n", s.name, s.perRequest())
	}
	g, o := sides["gateway"].perRequest(), sides["off"].perRequest()
	fmt.Fprintf(cfg.out, "  the rate limiter costs %.1f µs of CPU per request (%.0f%% of the gateway's)\n", g-o, 100*(g-o)/g)
	return nil
}

// tally is the CPU ticks and requests of one side.
type tally struct {
	ticks, requests int64
}

func (t tally) perRequest() float64 {
	if t.requests == 0 {
		return 0
	}
	return float64(t.ticks) * 10_000 / float64(t.requests) // a tick is 10 ms
}

func pidTicks(pids []int) int64 {
	var n int64
	for _, pid := range pids {
		if t, err := cpuTicks(pid); err == nil {
			n += t
		}
	}
	return n
}

// headerLoad is readLoad with extra request headers ("Name: value").
func headerLoad(ctx context.Context, client *http.Client, url string, headers []string, clients int, d time.Duration) (float64, int64, error) {
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	stop := start.Add(d)
	for range clients {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				errs <- err
				return
			}
			req.Header.Set("Accept", "application/hal+json")
			for _, h := range headers {
				k, v, _ := strings.Cut(h, ":")
				req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			for time.Now().Before(stop) && ctx.Err() == nil {
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
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	return rate(int(n.Load()), elapsed), n.Load(), nil
}

// nginxProxy is nginx running in the foreground with a configuration of
// its own in a temporary folder.
type nginxProxy struct {
	cmd *exec.Cmd
	dir string
	url string
}

// nginxConf is a plain reverse proxy of /orders/ to the orders service with
// keep-alive upstream connections: what an operator would write.
const nginxConf = `daemon off;
master_process on;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream orders { server %[2]s; keepalive 128; }
    server {
        listen %[3]s;
        location /orders/ {
            proxy_pass http://orders/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Prefix /orders;
        }
    }
}
`

func startNginx(ctx context.Context, upstream string) (*nginxProxy, error) {
	dir, err := os.MkdirTemp("", "sagittarius-bench-nginx-")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, strings.TrimPrefix(upstream, "http://"), addr), 0o644); err != nil {
		return nil, err
	}
	bin := "/usr/sbin/nginx"
	if p, err := exec.LookPath("nginx"); err == nil {
		bin = p
	}
	cmd := exec.CommandContext(ctx, bin, "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nginx: %w", err)
	}
	ng := &nginxProxy{cmd: cmd, dir: dir, url: "http://" + addr}
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return ng, nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			ng.stop()
			return nil, fmt.Errorf("nginx is not listening on %s: %s", addr, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pids returns the master and its workers.
func (n *nginxProxy) pids() []int {
	master := n.cmd.Process.Pid
	out := []int{master}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if f := strings.Fields(string(b[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(master) {
			out = append(out, pid)
		}
	}
	return out
}

func (n *nginxProxy) stop() {
	_ = n.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = n.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(n.dir)
}
