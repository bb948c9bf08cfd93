// Package telemetry sets up metrics (Prometheus) and traces (OpenTelemetry)
// for one Sagittarius process, a service or the gateway, and instruments
// what the process is made of: its HTTP server, its event bus, its database
// and (for the gateway) its upstreams.
//
// A service's wiring, all of it:
//
//	logger := slog.New(telemetry.LogHandler(slog.NewJSONHandler(stdout, nil)))
//	tel, err := telemetry.New(ctx, telemetry.Config{Service: "sales.orders", Getenv: getenv, Logger: logger})
//	defer tel.Shutdown(context.WithoutCancel(ctx))
//	err = tel.InstrumentDB(db, "orders")
//	bus, err := eventbus.New(tel.BusConfig(eventbus.Config{...}))
//	err = tel.ObserveBus(bus)
//	handler := tel.Middleware(httpkit.Stack(routes, ...))
//
// Metrics are always on: GET /metrics on the process's own port (served by
// Middleware). Every series carries the constant label service (the service
// name, or "gateway"), so series stay apart however they are scraped.
//
// SAGITTARIUS_METRICS=off turns every metric off (no /metrics, no counting):
// it exists to measure what metrics cost (cmd/bench -suite observability).
//
// Tracing is on only when the standard OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT says where to export (OTLP over HTTP/protobuf);
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG choose the sampler; unset,
// the platform's default is parentbased_traceidratio with ratio 0.1 (or
// OTEL_TRACES_SAMPLER_ARG): a request that arrives with a sampled
// traceparent is always traced, one without is traced one time in ten.
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none
// turn it off. Off, no span is created at all: the bus and the middleware
// skip tracing entirely. Context propagates as W3C traceparent.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config configures New.
type Config struct {
	// Service is the service name (sales.orders), or "gateway": the value
	// of the service label of every metric and the service.name of every
	// span. Required.
	Service string
	// Getenv reads the OTEL_* variables. Nil means tracing is off.
	Getenv func(string) string
	// Logger receives scrape and export errors. Default slog.Default().
	Logger *slog.Logger
	// Exporter, if set, receives the spans instead of the OTLP exporter, and
	// turns tracing on whatever the environment says (tests: an in-memory
	// exporter). The sampler still comes from Getenv.
	Exporter sdktrace.SpanExporter
}

// T is the telemetry of one process. Its methods are safe for concurrent
// use.
type T struct {
	service string
	// keptDeadLetters counts unresolved failed messages (CountDeadLetters), or nil.
	keptDeadLetters func(ctx context.Context) (int, error)
	log             *slog.Logger
	registry        *prometheus.Registry
	reg             prometheus.Registerer // registry, with the service label
	metrics         http.Handler

	tp     *sdktrace.TracerProvider // nil when tracing is off
	tracer trace.Tracer             // nil when tracing is off
	prop   propagation.TextMapPropagator

	http httpMetrics
	up   upstreamMetrics
	bus  *busObserver

	metricsOff bool // SAGITTARIUS_METRICS=off: no metrics at all (to measure their cost)
}

// New sets up the registry (Go and process collectors, the HTTP and event
// families) and, when the environment asks for it, the tracer provider and
// its exporter. It fails on an invalid OTEL_* setting. Call Shutdown at the
// end to flush spans.
func New(ctx context.Context, cfg Config) (*T, error) {
	if cfg.Service == "" {
		return nil, errors.New("telemetry: Config.Service is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	registry := prometheus.NewRegistry()
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"service": cfg.Service}, registry)
	t := &T{
		service:  cfg.Service,
		log:      cfg.Logger.With("component", "telemetry"),
		registry: registry,
		reg:      reg,
		prop:     propagation.TraceContext{},
	}
	t.metrics = promhttp.HandlerFor(registry, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{t.log},
		ErrorHandling: promhttp.ContinueOnError, // one failing collector must not hide the others
	})
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	t.http = newHTTPMetrics()
	t.up = newUpstreamMetrics()
	t.bus = newBusObserver()
	for _, c := range []prometheus.Collector{t.http.requests, t.http.duration, t.up.requests, t.up.errors, t.up.duration,
		t.bus.published, t.bus.consumed, t.bus.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("telemetry: %w", err)
		}
	}
	t.bus.unhandled = t.bus.consumed.WithLabelValues("", "unhandled")
	if cfg.Getenv != nil && cfg.Getenv("SAGITTARIUS_METRICS") == "off" {
		t.metricsOff = true
	}

	tp, err := newTracerProvider(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if tp != nil {
		t.tp = tp
		t.tracer = tp.Tracer("github.com/sagittarius-a/sagittarius/internal/telemetry")
	}
	return t, nil
}

// Registerer returns the registry metrics of the process's own go into
// (with the service label).
func (t *T) Registerer() prometheus.Registerer { return t.reg }

// Gatherer returns the registry, for tests and for pushing.
func (t *T) Gatherer() prometheus.Gatherer { return t.registry }

// Handler returns the handler of GET /metrics (Prometheus text or
// OpenMetrics format). Middleware already serves it at /metrics.
func (t *T) Handler() http.Handler { return t.metrics }

// Tracing reports whether spans are recorded and exported.
func (t *T) Tracing() bool { return t.tp != nil }

// TracerProvider returns the tracer provider, or nil when tracing is off
// (eventbus.Config.TracerProvider takes nil as "no spans").
func (t *T) TracerProvider() trace.TracerProvider {
	if t.tp == nil {
		return nil
	}
	return t.tp
}

// Flush exports the spans ended so far, within ctx. It returns nil when
// tracing is off.
func (t *T) Flush(ctx context.Context) error {
	if t.tp == nil {
		return nil
	}
	return t.tp.ForceFlush(ctx)
}

// Shutdown flushes the spans not yet exported and stops the exporter,
// within ctx and at most 5 seconds. It returns nil when tracing is off.
func (t *T) Shutdown(ctx context.Context) error {
	if t.tp == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return t.tp.Shutdown(ctx)
}

// slogPrinter adapts a slog.Logger to promhttp's ErrorLog.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.l.Warn("metrics: " + fmt.Sprint(v...)) }
