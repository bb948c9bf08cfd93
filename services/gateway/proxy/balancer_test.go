package proxy_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/services/gateway/proxy"
)

// instance is a real upstream instance (httptest) that counts what it
// receives. While broken, it drops the connection of every request but
// /health without answering a byte; while unhealthy, its /health answers 503.
type instance struct {
	srv       *httptest.Server
	served    atomic.Int32 // requests answered (not /health)
	dropped   atomic.Int32 // requests whose connection it dropped
	broken    atomic.Bool
	unhealthy atomic.Bool
	hold      chan struct{} // when not nil, requests to /slow wait for it to close
	mu        sync.Mutex
	bodies    []string // bodies of the requests answered
	methods   []string // methods of every request received (not /health)
}

func newInstance(t *testing.T) *instance {
	t.Helper()
	in := &instance{}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			if in.unhealthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
			return
		}
		b, _ := io.ReadAll(r.Body)
		in.mu.Lock()
		in.methods = append(in.methods, r.Method)
		in.mu.Unlock()
		if in.broken.Load() {
			in.dropped.Add(1)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		if r.URL.Path == "/slow" && in.hold != nil {
			<-in.hold
		}
		in.served.Add(1)
		in.mu.Lock()
		in.bodies = append(in.bodies, string(b))
		in.mu.Unlock()
		w.Header().Set("X-Instance", in.srv.URL)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(in.srv.Close)
	return in
}

func (in *instance) url(t *testing.T) *url.URL { return mustURL(t, in.srv.URL) }

// balancedGateway is a gateway whose only upstream, orders, has instances.
func balancedGateway(t *testing.T, cfg proxy.Config, instances ...*url.URL) *httptest.Server {
	t.Helper()
	cfg.Base = hal.MustBase(gwBase)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Upstreams = []proxy.Upstream{{Dir: "orders", Name: "sales.orders", Instances: instances}}
	g, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, method, url, body string) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBalancesRoundRobinAcrossIdleInstances(t *testing.T) {
	a, b, c := newInstance(t), newInstance(t), newInstance(t)
	gw := balancedGateway(t, proxy.Config{}, a.url(t), b.url(t), c.url(t))
	for range 30 {
		if s := call(t, http.MethodGet, gw.URL+"/orders/v1/orders", ""); s != http.StatusOK {
			t.Fatalf("status %d", s)
		}
	}
	for i, in := range []*instance{a, b, c} {
		if n := in.served.Load(); n != 10 {
			t.Errorf("instance %d served %d of 30 requests, want 10", i, n)
		}
	}
}

func TestSendsToTheLeastLoadedInstance(t *testing.T) {
	a, b := newInstance(t), newInstance(t)
	a.hold, b.hold = make(chan struct{}), make(chan struct{})
	gw := balancedGateway(t, proxy.Config{}, a.url(t), b.url(t))
	// One slow request occupies one instance.
	done := make(chan int, 1)
	go func() { done <- call(t, http.MethodGet, gw.URL+"/orders/slow", "") }()
	waitUntil(t, 5*time.Second, "the slow request at an instance", func() bool {
		a.mu.Lock()
		b.mu.Lock()
		defer a.mu.Unlock()
		defer b.mu.Unlock()
		return len(a.methods)+len(b.methods) == 1
	})
	busy, idle := a, b
	if len(b.methods) == 1 {
		busy, idle = b, a
	}
	for range 10 {
		if s := call(t, http.MethodGet, gw.URL+"/orders/v1/orders", ""); s != http.StatusOK {
			t.Fatalf("status %d", s)
		}
	}
	if n := idle.served.Load(); n != 10 {
		t.Errorf("the idle instance served %d of 10 requests while the other was busy, want 10", n)
	}
	close(busy.hold)
	if s := <-done; s != http.StatusOK {
		t.Errorf("slow request: %d", s)
	}
	close(idle.hold)
}

func TestEjectsAnInstanceWhoseConnectionsFailAndBringsItBack(t *testing.T) {
	a, b := newInstance(t), newInstance(t)
	gw := balancedGateway(t, proxy.Config{HealthInterval: 100 * time.Millisecond, EjectFor: 2 * time.Second}, a.url(t), b.url(t))
	a.broken.Store(true)
	for i := range 4 {
		if s := call(t, http.MethodGet, gw.URL+"/orders/v1/orders", ""); s != http.StatusOK {
			t.Fatalf("GET %d while an instance drops connections: %d", i, s)
		}
	}
	// A request reached the broken instance (net/http itself tries a GET
	// twice when a reused connection breaks), which ejected it; the GET was
	// retried on the other instance. Meanwhile nothing reaches it.
	dropped := a.dropped.Load()
	if dropped == 0 {
		t.Fatal("no request reached the broken instance: the test proves nothing")
	}
	for i := range 20 {
		if s := call(t, http.MethodGet, gw.URL+"/orders/v1/orders", ""); s != http.StatusOK {
			t.Fatalf("GET %d after the ejection: %d", i, s)
		}
	}
	if n := a.dropped.Load() - dropped; n != 0 {
		t.Errorf("the ejected instance received %d requests", n)
	}
	if n := b.served.Load(); n != 24 {
		t.Errorf("the healthy instance served %d of 24", n)
	}
	a.broken.Store(false)
	start := time.Now()
	waitUntil(t, 5*time.Second, "the repaired instance back in rotation", func() bool {
		call(t, http.MethodGet, gw.URL+"/orders/v1/orders", "")
		return a.served.Load() > 0
	})
	t.Logf("back in rotation %v after it was repaired", time.Since(start).Round(time.Millisecond))
}

func TestActiveHealthChecksTakeAnInstanceOutAndBack(t *testing.T) {
	a, b := newInstance(t), newInstance(t)
	gw := balancedGateway(t, proxy.Config{HealthInterval: 50 * time.Millisecond}, a.url(t), b.url(t))
	a.unhealthy.Store(true)
	time.Sleep(300 * time.Millisecond) // several checks
	before := a.served.Load()
	for range 10 {
		if s := call(t, http.MethodGet, gw.URL+"/orders/v1/orders", ""); s != http.StatusOK {
			t.Fatalf("status %d", s)
		}
	}
	if n := a.served.Load() - before; n != 0 {
		t.Errorf("the instance failing its health check served %d requests", n)
	}
	// The gateway's own /health: the service is available through another instance.
	if s := call(t, http.MethodGet, gw.URL+"/health", ""); s != http.StatusOK {
		t.Errorf("gateway /health with one of two instances failing: %d, want 200", s)
	}
	b.unhealthy.Store(true)
	if s := call(t, http.MethodGet, gw.URL+"/health", ""); s != http.StatusServiceUnavailable {
		t.Errorf("gateway /health with every instance failing: %d, want 503", s)
	}
	a.unhealthy.Store(false)
	b.unhealthy.Store(false)
	waitUntil(t, 5*time.Second, "the instance back in rotation", func() bool {
		call(t, http.MethodGet, gw.URL+"/orders/v1/orders", "")
		return a.served.Load() > before
	})
}

func TestRetriesIdempotentRequestsButNeverAPostOrPatchThatWasSent(t *testing.T) {
	a, b := newInstance(t), newInstance(t)
	// Ejection lasts 1ns and the health checks pass: the broken instance
	// stays in rotation, so requests keep reaching it first.
	gw := balancedGateway(t, proxy.Config{HealthInterval: time.Hour, EjectFor: time.Nanosecond}, a.url(t), b.url(t))
	a.broken.Store(true)

	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodDelete, http.MethodPut} {
		for i := range 4 {
			if s := call(t, m, gw.URL+"/orders/v1/orders/1", `{"n":`+string(rune('0'+i))+`}`); s != http.StatusOK {
				t.Errorf("%s %d: status %d, want 200 (retried on the healthy instance)", m, i, s)
			}
		}
	}
	if a.dropped.Load() == 0 {
		t.Fatal("no request reached the broken instance first: the test proves nothing")
	}
	b.mu.Lock()
	for _, body := range b.bodies[len(b.bodies)-4:] {
		if !strings.HasPrefix(body, `{"n":`) {
			t.Errorf("a retried PUT arrived with body %q", body)
		}
	}
	b.mu.Unlock()

	for _, m := range []string{http.MethodPost, http.MethodPatch} {
		droppedBefore, servedBefore := a.dropped.Load(), b.served.Load()
		failed := 0
		for range 6 {
			switch s := call(t, m, gw.URL+"/orders/v1/orders", `{"x":1}`); s {
			case http.StatusOK:
			case http.StatusBadGateway:
				failed++
			default:
				t.Errorf("%s: status %d", m, s)
			}
		}
		dropped, served := int(a.dropped.Load()-droppedBefore), int(b.served.Load()-servedBefore)
		if dropped == 0 || failed != dropped || served != 6-dropped {
			t.Errorf("%s: %d reached the broken instance, %d answered 502, %d served by the other: a %s that was sent must not be sent again",
				m, dropped, failed, served, m)
		}
	}
}

func TestSendsAPostToAnotherInstanceWhenTheConnectionIsRefused(t *testing.T) {
	b := newInstance(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := mustURL(t, "http://"+l.Addr().String())
	l.Close() // nothing listens: connection refused
	gw := balancedGateway(t, proxy.Config{HealthInterval: time.Hour, EjectFor: time.Nanosecond}, down, b.url(t))
	for i := range 4 {
		if s := call(t, http.MethodPost, gw.URL+"/orders/v1/orders", `{"i":1}`); s != http.StatusOK {
			t.Errorf("POST %d: %d, want 200 (nothing was sent to the instance that refused the connection)", i, s)
		}
	}
	if n := b.served.Load(); n != 4 {
		t.Errorf("the running instance served %d of 4 POSTs", n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, body := range b.bodies {
		if body != `{"i":1}` {
			t.Errorf("POST arrived with body %q", body)
		}
	}
}

func TestParseInstances(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"http://127.0.0.1:8083", 1},
		{"http://127.0.0.1:8083,http://127.0.0.1:9083", 2},
		{"http://a:1, https://b:2 ,http://c:3/base", 3},
		{"http://a:1,", 0},
		{"127.0.0.1:8083", 0},
		{"http://a:1/?x=1", 0},
	} {
		us, err := proxy.ParseInstances(tc.in)
		if len(us) != tc.want || (err == nil) != (tc.want > 0) {
			t.Errorf("ParseInstances(%q) = %v, %v; want %d URLs", tc.in, us, err, tc.want)
		}
	}
}
