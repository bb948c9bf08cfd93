package telemetry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sagittarius-a/sagittarius/internal/httpkit"
)

// RouteUnmatched is the route label of requests no route matched (404s of
// unknown paths): one value, so that scanners cannot grow the series.
const RouteUnmatched = "unmatched"

// MetricsPath is where Middleware serves the metrics.
const MetricsPath = "/metrics"

type httpMetrics struct {
	requests *prometheus.CounterVec   // sagittarius_http_requests_total{route,method,code}
	duration *prometheus.HistogramVec // sagittarius_http_request_duration_seconds{route,method}
}

var httpBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newHTTPMetrics() httpMetrics {
	return httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagittarius_http_requests_total",
			Help: "HTTP requests served, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sagittarius_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route template and method.",
			Buckets: httpBuckets,
		}, []string{"route", "method"}),
	}
}

// methodLabel bounds the method label to the methods HTTP defines.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// Middleware wraps next, the process's whole handler (outside
// httpkit.Stack):
//
//   - GET /metrics is answered with the metrics (Handler) and not counted;
//   - every other request is counted in sagittarius_http_requests_total and
//     timed in sagittarius_http_request_duration_seconds, labelled with the
//     route template the Router (or the gateway) recorded through
//     httpkit.SetRoute, or RouteUnmatched;
//   - with tracing on, a server span named "METHOD /route/template" is
//     started, child of the request's traceparent, and the request's
//     traceparent header is replaced by the span's, so that httpkit.RequestID
//     hands it on (eventbus.WithTraceparent) and proxies forward it.
func (t *T) Middleware(next http.Handler) http.Handler {
	if t.metricsOff && t.tracer == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == MetricsPath && !t.metricsOff {
			t.metrics.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		ctx, route := httpkit.WithRouteRecorder(r.Context())
		var span trace.Span
		if t.tracer != nil {
			ctx = t.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
			ctx, span = t.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", r.Method),
					attribute.String("url.path", r.URL.Path), attribute.String("server.address", r.Host)))
			r.Header.Del("Traceparent")
			r.Header.Del("Tracestate")
			t.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
		}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			code := sw.status
			if code == 0 {
				code = http.StatusOK
			}
			rt := route()
			if rt == "" {
				rt = RouteUnmatched
			}
			if !t.metricsOff {
				m := methodLabel(r.Method)
				t.http.requests.WithLabelValues(rt, m, strconv.Itoa(code)).Inc()
				t.http.duration.WithLabelValues(rt, m).Observe(time.Since(start).Seconds())
			}
			if span != nil {
				span.SetName(r.Method + " " + rt)
				span.SetAttributes(attribute.String("http.route", rt), attribute.Int("http.response.status_code", code))
				if code >= 500 {
					span.SetStatus(codes.Error, http.StatusText(code))
				}
				span.End()
			}
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// statusWriter records the status written through it. Unwrap lets
// http.ResponseController reach the underlying writer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush implements http.Flusher when the underlying writer does.
func (s *statusWriter) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// upstreamMetrics are the gateway's per-upstream families.
type upstreamMetrics struct {
	requests *prometheus.CounterVec   // sagittarius_gateway_upstream_requests_total{upstream,code}
	errors   *prometheus.CounterVec   // sagittarius_gateway_upstream_errors_total{upstream,reason}
	duration *prometheus.HistogramVec // sagittarius_gateway_upstream_duration_seconds{upstream}
}

func newUpstreamMetrics() upstreamMetrics {
	return upstreamMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagittarius_gateway_upstream_requests_total",
			Help: "Requests the gateway proxied that got an answer from the upstream, by upstream (its dir) and status code.",
		}, []string{"upstream", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagittarius_gateway_upstream_errors_total",
			Help: "Proxied requests that got no answer, by upstream and reason: unavailable (refused, unknown host), timeout, canceled (the client went away), transport (anything else).",
		}, []string{"upstream", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sagittarius_gateway_upstream_duration_seconds",
			Help:    "Time from sending a proxied request to the upstream's response headers (or the failure), by upstream.",
			Buckets: httpBuckets,
		}, []string{"upstream"}),
	}
}

// UpstreamTransport wraps rt, the gateway's transport to the upstream named
// dir, to count and time every proxied request in the upstream families
// and, with tracing on, record a client span ("METHOD upstream dir") whose
// context replaces the request's traceparent header. Its signature is
// proxy.Config.WrapTransport's. A nil *T (a process printing its contracts)
// returns rt.
func (t *T) UpstreamTransport(dir string, rt http.RoundTripper) http.RoundTripper {
	if t == nil || (t.metricsOff && t.tracer == nil) {
		return rt
	}
	return &upstreamTransport{t: t, dir: dir, rt: rt, duration: t.up.duration.WithLabelValues(dir)}
}

type upstreamTransport struct {
	t        *T
	dir      string
	rt       http.RoundTripper
	duration prometheus.Observer
}

func (u *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var span trace.Span
	if u.t.tracer != nil {
		var ctx context.Context
		ctx, span = u.t.tracer.Start(req.Context(), req.Method+" "+u.dir, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("http.request.method", req.Method),
				attribute.String("server.address", req.URL.Host), attribute.String("url.full", req.URL.String()),
				attribute.String("sagittarius.upstream", u.dir)))
		// A RoundTripper must not change the request it is given: send a
		// copy with its own headers.
		out := req.Clone(ctx)
		out.Header.Del("Traceparent")
		out.Header.Del("Tracestate")
		u.t.prop.Inject(ctx, propagation.HeaderCarrier(out.Header))
		req = out
	}
	start := time.Now()
	res, err := u.rt.RoundTrip(req)
	count := !u.t.metricsOff
	if count {
		u.duration.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		if count {
			u.t.up.errors.WithLabelValues(u.dir, errorReason(req.Context(), err)).Inc()
		}
		if span != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			span.End()
		}
		return nil, err
	}
	if count {
		u.t.up.requests.WithLabelValues(u.dir, strconv.Itoa(res.StatusCode)).Inc()
	}
	if span != nil {
		span.SetAttributes(attribute.Int("http.response.status_code", res.StatusCode))
		if res.StatusCode >= 500 {
			span.SetStatus(codes.Error, http.StatusText(res.StatusCode))
		}
		span.End()
	}
	return res, nil
}

// errorReason classifies a transport failure like the gateway's answer to
// it: unavailable (503), timeout (504), canceled (the client left), transport (502).
func errorReason(ctx context.Context, err error) string {
	var ne net.Error
	var dnsErr *net.DNSError
	switch {
	case ctx.Err() == context.Canceled:
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, &dnsErr):
		return "unavailable"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return "transport"
	}
}
