package proxy_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/telemetry"
	"github.com/sagittarius-a/sagittarius/services/gateway/proxy"
)

// newObservedGateway is the gateway as main wires it: telemetry middleware
// outside the stack, upstream transports wrapped.
func newObservedGateway(t *testing.T, exp *tracetest.InMemoryExporter, ups map[string]string) (http.Handler, *telemetry.T) {
	t.Helper()
	cfg := telemetry.Config{Service: "gateway", Logger: slog.New(slog.DiscardHandler)}
	if exp != nil {
		cfg.Exporter = exp
	}
	tel, err := telemetry.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	pcfg := proxy.Config{Base: hal.MustBase(gwBase), Logger: slog.New(slog.DiscardHandler), WrapTransport: tel.UpstreamTransport}
	for dir, u := range ups {
		pcfg.Upstreams = append(pcfg.Upstreams, proxy.Upstream{Dir: dir, Name: "svc." + dir, URL: mustURL(t, u)})
	}
	g, err := proxy.New(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	return tel.Middleware(httpkit.Stack(g, httpkit.Options{Logger: slog.New(slog.DiscardHandler)})), tel
}

// TestServiceMetricsAreNotProxied: a service's /metrics is for the
// monitoring system on the service's own port; through the gateway, every
// spelling of it is a 404 that never reaches the service.
func TestServiceMetricsAreNotProxied(t *testing.T) {
	var last seen
	up := echo(t, &last)
	h, _ := newObservedGateway(t, nil, map[string]string{"orders": up.URL})
	for _, p := range []string{"/orders/metrics", "/orders//metrics", "/orders/./metrics", "/orders/v1/../metrics",
		"/orders/metrics/", "/orders/metrics/x", "/orders/%6Detrics"} {
		last = seen{}
		rec := send(h, "GET", p, "")
		if rec.Code != http.StatusNotFound || last.path != "" {
			t.Errorf("GET %s: %d, upstream saw %q; want 404 and nothing proxied", p, rec.Code, last.path)
		}
	}
	if rec := send(h, "GET", "/orders/v1/metrics-report", ""); rec.Code != http.StatusOK || last.path != "/v1/metrics-report" {
		t.Errorf("a path that only starts like metrics: %d, upstream saw %q", rec.Code, last.path)
	}
	// The gateway's own metrics are on its own port.
	rec := send(h, "GET", "/metrics", "")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "sagittarius_gateway_upstream_requests_total") {
		t.Errorf("GET /metrics: %d", rec.Code)
	}
}

// TestUpstreamMetrics counts answers and failures per upstream, and labels
// the gateway's requests by /<dir>/*, never by the raw path.
func TestUpstreamMetrics(t *testing.T) {
	var last seen
	up := echo(t, &last)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	h, tel := newObservedGateway(t, nil, map[string]string{"orders": up.URL, "payments": dead})
	send(h, "GET", "/orders/v1/orders/123", "")
	send(h, "POST", "/orders/created?loc=/v1/orders/9", "")
	if rec := send(h, "GET", "/payments/v1/payments/1", ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("dead upstream: %d", rec.Code)
	}
	want := `
# HELP sagittarius_gateway_upstream_requests_total Requests the gateway proxied that got an answer from the upstream, by upstream (its dir) and status code.
# TYPE sagittarius_gateway_upstream_requests_total counter
sagittarius_gateway_upstream_requests_total{code="200",service="gateway",upstream="orders"} 1
sagittarius_gateway_upstream_requests_total{code="201",service="gateway",upstream="orders"} 1
# HELP sagittarius_gateway_upstream_errors_total Proxied requests that got no answer, by upstream and reason: unavailable (refused, unknown host), timeout, canceled (the client went away), transport (anything else).
# TYPE sagittarius_gateway_upstream_errors_total counter
sagittarius_gateway_upstream_errors_total{reason="unavailable",service="gateway",upstream="payments"} 1
`
	if err := testutil.GatherAndCompare(tel.Gatherer(), strings.NewReader(want),
		"sagittarius_gateway_upstream_requests_total", "sagittarius_gateway_upstream_errors_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(tel.Gatherer(), "sagittarius_gateway_upstream_duration_seconds"); err != nil || n != 2 {
		t.Errorf("%d upstream duration series (%v), want 2 (orders, payments)", n, err)
	}
	text := send(h, "GET", "/metrics", "").Body.String()
	for _, s := range []string{`route="/orders/*"`, `route="/payments/*"`} {
		if !strings.Contains(text, s) {
			t.Errorf("no %s in the HTTP families", s)
		}
	}
	if strings.Contains(text, "orders/123") || strings.Contains(text, "v1/payments") {
		t.Error("a raw path is in the metrics")
	}
}

// TestUpstreamSpan: the gateway's server span is the parent of a client
// span per proxied request, and the upstream receives the client span's
// traceparent.
func TestUpstreamSpan(t *testing.T) {
	var last seen
	up := echo(t, &last)
	exp := tracetest.NewInMemoryExporter()
	h, tel := newObservedGateway(t, exp, map[string]string{"orders": up.URL})
	send(h, "GET", "/orders/v1/orders/1", "", "Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if err := tel.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	var server, client *tracetest.SpanStub
	for i := range spans {
		switch spans[i].Name {
		case "GET /orders/*":
			server = &spans[i]
		case "GET orders":
			client = &spans[i]
		}
	}
	if server == nil || client == nil {
		t.Fatalf("spans %v", spans)
	}
	if server.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || server.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("server span does not continue the client's trace: %v parent %v", server.SpanContext, server.Parent)
	}
	if client.Parent.SpanID() != server.SpanContext.SpanID() || client.SpanContext.TraceID() != server.SpanContext.TraceID() {
		t.Errorf("client span is not the server span's child")
	}
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + client.SpanContext.SpanID().String() + "-01"
	if got := last.header.Get("Traceparent"); got != want {
		t.Errorf("upstream got traceparent %q, want the client span's %q", got, want)
	}
}
