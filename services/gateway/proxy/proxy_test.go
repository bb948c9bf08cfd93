package proxy_test

import (
	"encoding/json"
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
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	"github.com/sagittarius-a/sagittarius/services/gateway/proxy"
)

// seen is what an upstream observed of the last request.
type seen struct {
	method, path, rawPath, query, body string
	header                             http.Header
}

// echo is an upstream answering every request with 200 and recording it;
// /created answers 201 with the Location given in ?loc=.
func echo(t *testing.T, last *seen) *httptest.Server {
	t.Helper()
	var mu sync.Mutex // the health check asks upstreams concurrently
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		*last = seen{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, string(b), r.Header.Clone()}
		mu.Unlock()
		if id := r.Header.Get("X-Request-Id"); id != "" {
			w.Header().Set("X-Request-Id", id) // as every service does (httpkit.RequestID)
		}
		switch r.URL.Path {
		case "/created":
			w.Header().Set("Location", r.URL.Query().Get("loc"))
			w.WriteHeader(http.StatusCreated)
		case "/health":
			w.WriteHeader(http.StatusOK)
		default:
			w.Header().Set("Content-Type", "application/hal+json")
			_, _ = io.WriteString(w, `{"_links":{"self":{"href":"x"}}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

const gwBase = "http://gw.test:8080"

func newGateway(t *testing.T, ups map[string]string, timeout time.Duration) http.Handler {
	t.Helper()
	cfg := proxy.Config{Base: hal.MustBase(gwBase), ResponseTimeout: timeout, Logger: slog.New(slog.DiscardHandler)}
	for _, dir := range []string{"customers", "orders", "payments"} {
		if ups[dir] != "" {
			cfg.Upstreams = append(cfg.Upstreams, proxy.Upstream{Dir: dir, Name: "svc." + dir, URL: mustURL(t, ups[dir])})
		}
	}
	g, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return httpkit.Stack(g, httpkit.Options{Logger: slog.New(slog.DiscardHandler)})
}

func send(h http.Handler, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRoot(t *testing.T) {
	var last seen
	up := echo(t, &last)
	h := newGateway(t, map[string]string{"customers": up.URL, "orders": up.URL}, 0)
	rec := send(h, "GET", "/", "")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != hal.ContentType {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var doc struct {
		Links map[string]struct{ Href, Title string } `json:"_links"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"self": gwBase + "/", "customers": gwBase + "/customers/v1", "orders": gwBase + "/orders/v1"}
	if len(doc.Links) != len(want) {
		t.Fatalf("links %v", doc.Links)
	}
	for rel, href := range want {
		if doc.Links[rel].Href != href {
			t.Fatalf("%s = %q, want %q", rel, doc.Links[rel].Href, href)
		}
	}
	if doc.Links["orders"].Title != "svc.orders" {
		t.Fatalf("title %q", doc.Links["orders"].Title)
	}
	if rec := send(h, "POST", "/", "{}"); rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" || rec.Header().Get("Content-Type") != problem.ContentType {
		t.Fatalf("POST /: %d %q", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestProxying(t *testing.T) {
	var last seen
	up := echo(t, &last)
	h := newGateway(t, map[string]string{"customers": up.URL, "orders": up.URL + "/base"}, 0)
	tests := []struct {
		name, method, target, body string
		hdr                        []string
		wantPath, wantRaw, wantQ   string
	}{
		{"get with query", "GET", "/customers/v1/customers?status=active&page=2", "", nil, "/v1/customers", "", "status=active&page=2"},
		{"post body", "POST", "/customers/v1/customers", `{"name":"A"}`, []string{"Content-Type", "application/json"}, "/v1/customers", "", ""},
		{"prefix only", "GET", "/customers", "", nil, "/", "", ""},
		{"encoded slash kept", "GET", "/customers/v1/customers/a%2Fb", "", nil, "/v1/customers/a/b", "/v1/customers/a%2Fb", ""},
		{"upstream base path", "PATCH", "/orders/v1/orders/1", `{}`, nil, "/base/v1/orders/1", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			last = seen{}
			rec := send(h, tt.method, tt.target, tt.body, tt.hdr...)
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if last.method != tt.method || last.path != tt.wantPath || last.rawPath != tt.wantRaw || last.query != tt.wantQ || last.body != tt.body {
				t.Fatalf("upstream saw %+v", last)
			}
			if !httpkit.ValidRequestID(last.header.Get("X-Request-Id")) || !httpkit.ValidTraceparent(last.header.Get("Traceparent")) {
				t.Fatalf("upstream headers %v", last.header)
			}
			if ids := rec.Header().Values("X-Request-Id"); len(ids) != 1 || ids[0] != last.header.Get("X-Request-Id") {
				t.Fatalf("client got X-Request-Id %q, upstream saw %q: want it once, the same", ids, last.header.Get("X-Request-Id"))
			}
			if last.header.Get("X-Forwarded-Host") != "example.com" || last.header.Get("X-Forwarded-Prefix") == "" {
				t.Fatalf("forwarding headers %v", last.header)
			}
		})
	}

	// A request id and traceparent from the client are passed on unchanged.
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	send(h, "GET", "/customers/v1", "", "X-Request-Id", "client-id-1", "Traceparent", tp)
	if last.header.Get("X-Request-Id") != "client-id-1" || last.header.Get("Traceparent") != tp {
		t.Fatalf("upstream headers %v", last.header)
	}
}

func TestLocationRewrite(t *testing.T) {
	var last seen
	up := echo(t, &last)
	h := newGateway(t, map[string]string{"customers": up.URL}, 0)
	tests := []struct{ loc, want string }{
		{gwBase + "/customers/v1/customers/1", gwBase + "/customers/v1/customers/1"},
		{up.URL + "/v1/customers/1", gwBase + "/customers/v1/customers/1"},
		{"/v1/customers/1?x=1", gwBase + "/customers/v1/customers/1?x=1"},
		{"https://elsewhere.example/x", "https://elsewhere.example/x"},
		{"//evil.example/x", "//evil.example/x"},
	}
	for _, tt := range tests {
		rec := send(h, "POST", "/customers/created?loc="+url.QueryEscape(tt.loc), "")
		if rec.Code != 201 || rec.Header().Get("Location") != tt.want {
			t.Errorf("Location %q became %q (status %d), want %q", tt.loc, rec.Header().Get("Location"), rec.Code, tt.want)
		}
	}
}

func TestUpstreamFailures(t *testing.T) {
	// down: a port nobody listens on
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()

	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_, _ = io.WriteString(conn, "this is not HTTP\r\n\r\n")
			conn.Close()
		}
	}))
	defer broken.Close()

	h := newGateway(t, map[string]string{"customers": down, "orders": slow.URL, "payments": broken.URL}, 200*time.Millisecond)
	tests := []struct {
		target string
		want   int
	}{
		{"/customers/v1", 503},
		{"/orders/v1", 504},
		{"/payments/v1", 502},
		{"/shipping/v1", 404},
		{"/customersx/v1", 404},
		{"/nothing", 404},
		{"/health", 503},
	}
	for _, tt := range tests {
		rec := send(h, "GET", tt.target, "")
		var p problem.Problem
		if rec.Code != tt.want || rec.Header().Get("Content-Type") != problem.ContentType ||
			json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Status != tt.want {
			t.Errorf("GET %s: %d %q %s, want %d problem", tt.target, rec.Code, rec.Header().Get("Content-Type"), rec.Body, tt.want)
		}
	}
}

func TestHealth(t *testing.T) {
	var last seen
	up := echo(t, &last)
	h := newGateway(t, map[string]string{"customers": up.URL, "orders": up.URL}, 0)
	rec := send(h, "GET", "/health", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"orders":"ok"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if rec := send(h, "DELETE", "/health", ""); rec.Code != 405 {
		t.Fatalf("DELETE /health: %d", rec.Code)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	u := mustURL(t, "http://127.0.0.1:1")
	tests := []proxy.Config{
		{Upstreams: []proxy.Upstream{{Dir: "a", URL: u}}},
		{Base: hal.MustBase(gwBase)},
		{Base: hal.MustBase(gwBase), Upstreams: []proxy.Upstream{{Dir: "Orders", URL: u}}},
		{Base: hal.MustBase(gwBase), Upstreams: []proxy.Upstream{{Dir: "a", URL: u}, {Dir: "a", URL: u}}},
		{Base: hal.MustBase(gwBase), Upstreams: []proxy.Upstream{{Dir: "a", URL: mustURL(t, "/relative")}}},
		{Base: hal.MustBase(gwBase), Upstreams: []proxy.Upstream{{Dir: "a"}}},
	}
	for i, c := range tests {
		if _, err := proxy.New(c); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
}

// Under concurrent load the gateway keeps its upstream connections: a second
// wave of 100 concurrent requests reuses the connections of the first instead
// of dialing again (which the default of 2, or any idle limit below the
// concurrency, would do for the excess).
func TestUpstreamConnectionsAreReusedUnderConcurrency(t *testing.T) {
	var dials atomic.Int64
	var release atomic.Pointer[chan struct{}] // one channel per wave, replaced while handlers may still read it
	first := make(chan struct{})
	release.Store(&first)
	var inFlight sync.WaitGroup
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait := *release.Load()
		inFlight.Done()
		<-wait // hold every request until all of the wave arrived: 100 connections at once
		_, _ = io.WriteString(w, `{}`)
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	h := newGateway(t, map[string]string{"orders": up.URL}, 0)
	const n = 100
	wave := func() {
		inFlight.Add(n)
		var done sync.WaitGroup
		for range n {
			done.Go(func() {
				if rec := send(h, "GET", "/orders/v1/orders/x", ""); rec.Code != 200 {
					t.Errorf("status %d", rec.Code)
				}
			})
		}
		inFlight.Wait()
		close(*release.Load())
		done.Wait()
		next := make(chan struct{})
		release.Store(&next)
	}
	wave()
	dialed := dials.Load()
	wave()
	if again := dials.Load() - dialed; again != 0 {
		t.Errorf("second wave of %d concurrent requests dialed %d new upstream connections (first wave: %d); want 0", n, again, dialed)
	}
}

// An upstream failure is logged once, as a warning with the request id.
func TestUpstreamFailureLogged(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // nothing listens here any more
	var lines testinfra.SyncBuffer
	logger := slog.New(slog.NewJSONHandler(&lines, nil))
	g, err := proxy.New(proxy.Config{Base: hal.MustBase(gwBase), Logger: logger, Upstreams: []proxy.Upstream{
		{Dir: "orders", Name: "svc.orders", URL: mustURL(t, down.URL)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec := send(httpkit.Stack(g, httpkit.Options{Logger: slog.New(slog.DiscardHandler)}), "GET", "/orders/v1/orders", "", "X-Request-Id", "rid-down")
	var got map[string]any
	if err := json.Unmarshal([]byte(lines.String()), &got); err != nil {
		t.Fatalf("log %q: %v", lines.String(), err)
	}
	if rec.Code != http.StatusServiceUnavailable || got["level"] != "WARN" || got["upstream"] != "orders" ||
		got["request_id"] != "rid-down" || got["status"] != float64(503) || got["method"] != "GET" {
		t.Fatalf("upstream down (%d): log %v, want a warning with the request id", rec.Code, got)
	}
}

// TestOversizedBodyIs413 sends a body over the gateway's limit with and
// without Content-Length: both get 413 problem+json, never 502, and the
// upstream is not blamed.
func TestOversizedBodyIs413(t *testing.T) {
	var last seen
	up := echo(t, &last)
	gw := httptest.NewServer(newGateway(t, map[string]string{"orders": up.URL}, time.Second))
	defer gw.Close()
	big := strings.Repeat("x", httpkit.DefaultMaxBodyBytes+1)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(strings.NewReader(big)) // no Len: the client sends it chunked
		}
		req, err := http.NewRequest("POST", gw.URL+"/orders/v1/orders", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("chunked %v: %v", chunked, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge || res.Header.Get("Content-Type") != problem.ContentType {
			t.Fatalf("chunked %v: %d %s %s", chunked, res.StatusCode, res.Header.Get("Content-Type"), b)
		}
	}
}
