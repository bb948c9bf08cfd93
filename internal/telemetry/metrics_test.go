package telemetry_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/telemetry"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

type widget struct {
	ID string `json:"id"`
}

var (
	widgetMade    = eventbus.MustEventType[widget]("test.widgets", "widget_made", "widget")
	widgetBroken  = eventbus.MustEventType[widget]("test.widgets", "widget_broken", "widget")
	widgetIgnored = eventbus.MustEventType[widget]("test.widgets", "widget_ignored", "widget")
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTelemetry(t *testing.T, service string, getenv func(string) string) *telemetry.T {
	t.Helper()
	tel, err := telemetry.New(context.Background(), telemetry.Config{Service: service, Getenv: getenv, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

// sample returns the value of the series name{labels} (counter or gauge
// value, histogram sample count) and whether it exists. Every series must
// carry the service label.
func sample(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			if got["service"] == "" {
				t.Errorf("%s has no service label: %v", name, got)
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), true
			default:
				return m.GetUntyped().GetValue(), true
			}
		}
	}
	return 0, false
}

func waitSample(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, ok := sample(t, g, name, labels)
		if ok && v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v (present %v), want %v", name, labels, v, ok, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func runBus(t *testing.T, b *eventbus.Bus) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(20 * time.Second)
	for b.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatal("bus not connected")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEventMetrics runs a consuming bus and a publishing bus, each with its
// own telemetry, on a real broker and database, and checks that a handled,
// a duplicate, a retried, a dead-lettered and an unhandled delivery each
// move their own counter, and that the broker and outbox families read what
// is there.
func TestEventMetrics(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	db := testinfra.NewDatabase(t)
	if err := eventbus.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}

	consTel := newTelemetry(t, "test.consumer", nil)
	if err := consTel.InstrumentDB(db, "consumer"); err != nil {
		t.Fatal(err)
	}
	cons, err := eventbus.New(consTel.BusConfig(eventbus.Config{URL: url, Service: "test.consumer", Logger: quiet(),
		MaxAttempts: 2, RetryDelays: []time.Duration{50 * time.Millisecond}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := consTel.ObserveBus(cons); err != nil {
		t.Fatal(err)
	}
	if err := eventbus.HandleTx(cons, db, widgetMade, func(context.Context, *sqlx.Tx, eventbus.Event[widget]) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := eventbus.Handle(cons, widgetBroken, func(context.Context, eventbus.Event[widget]) error { return errors.New("always fails") }); err != nil {
		t.Fatal(err)
	}
	runBus(t, cons)

	pubTel := newTelemetry(t, "test.widgets", nil)
	pub, err := eventbus.New(pubTel.BusConfig(eventbus.Config{URL: url, Service: "test.widgets", Logger: quiet()}))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publishes(widgetMade, widgetBroken, widgetIgnored); err != nil {
		t.Fatal(err)
	}
	runBus(t, pub)

	ctx := context.Background()
	made, _ := widgetMade.New(ctx, widget{ID: "1"})
	broken, _ := widgetBroken.New(ctx, widget{ID: "2"})
	ignored, _ := widgetIgnored.New(ctx, widget{ID: "3"})
	if err := pub.Publish(ctx, made, broken, ignored); err != nil {
		t.Fatal(err)
	}
	const consumed = "sagittarius_events_consumed_total"
	cg := consTel.Gatherer()
	waitSample(t, cg, consumed, map[string]string{"type": made.Type, "outcome": "handled"}, 1)
	if err := pub.Publish(ctx, made); err != nil { // the same uuid again: a redelivery
		t.Fatal(err)
	}
	waitSample(t, cg, consumed, map[string]string{"type": made.Type, "outcome": "duplicate"}, 1)
	waitSample(t, cg, consumed, map[string]string{"type": broken.Type, "outcome": "retried"}, 1)
	waitSample(t, cg, consumed, map[string]string{"type": broken.Type, "outcome": "dead_lettered"}, 1)
	waitSample(t, cg, consumed, map[string]string{"type": "", "outcome": "unhandled"}, 1)
	for _, c := range []struct {
		typ, outcome string
		want         float64
	}{
		{made.Type, "handled", 1}, {made.Type, "retried", 0}, {made.Type, "dead_lettered", 0},
		{broken.Type, "handled", 0}, {broken.Type, "duplicate", 0},
	} {
		if v, _ := sample(t, cg, consumed, map[string]string{"type": c.typ, "outcome": c.outcome}); v != c.want {
			t.Errorf("%s{type=%s,outcome=%s} = %v, want %v", consumed, c.typ, c.outcome, v, c.want)
		}
	}
	if v, _ := sample(t, cg, "sagittarius_event_handler_duration_seconds", map[string]string{"type": made.Type}); v != 2 {
		t.Errorf("handler duration samples of %s = %v, want 2 (handled and duplicate)", made.Type, v)
	}
	if v, _ := sample(t, pubTel.Gatherer(), "sagittarius_events_published_total", map[string]string{"type": made.Type}); v != 2 {
		t.Errorf("published %s = %v, want 2", made.Type, v)
	}
	if v, _ := sample(t, pubTel.Gatherer(), "sagittarius_events_published_total", map[string]string{"type": ignored.Type}); v != 1 {
		t.Errorf("published %s = %v, want 1", ignored.Type, v)
	}
	waitSample(t, cg, "sagittarius_dead_letter_messages", nil, 1)
	waitSample(t, cg, "sagittarius_broker_connected", nil, 1)
	waitSample(t, cg, "sagittarius_broker_reconnections_total", nil, 0)

	// The outbox gauges read the table: nothing, then one row nobody relays.
	waitSample(t, cg, "sagittarius_outbox_pending", nil, 0)
	waitSample(t, cg, "sagittarius_outbox_oldest_age_seconds", nil, 0)
	tx := db.MustBegin()
	if err := eventbus.Enqueue(ctx, tx, made); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	waitSample(t, cg, "sagittarius_outbox_pending", nil, 1)
	if age, _ := sample(t, cg, "sagittarius_outbox_oldest_age_seconds", nil); age < 1 || age > 60 {
		t.Errorf("oldest outbox age = %v s, want about 1", age)
	}
	if _, ok := sample(t, cg, "go_sql_open_connections", map[string]string{"db_name": "consumer"}); !ok {
		t.Error("no database pool statistics")
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := sample(t, cg, name, nil); !ok {
			t.Errorf("no %s (Go and process collectors)", name)
		}
	}
}

// TestHTTPMetricsUseTheRouteTemplate serves two requests to one route and
// one to an unknown path, and checks the labels: the template, never the
// raw path, and one value for everything unmatched.
func TestHTTPMetricsUseTheRouteTemplate(t *testing.T) {
	tel := newTelemetry(t, "test.http", nil)
	rt := httpkit.NewRouter()
	rt.HandleFunc("GET /v1/orders/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	rt.HandleFunc("POST /v1/orders", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	srv := httptest.NewServer(tel.Middleware(httpkit.Stack(rt, httpkit.Options{Logger: quiet()})))
	defer srv.Close()
	for _, p := range []string{"/v1/orders/a1", "/v1/orders/b2", "/nope/x1", "/nope/x2"} {
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	res, err := http.Post(srv.URL+"/v1/orders/a1", "application/json", nil) // 405
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	g := tel.Gatherer()
	for _, c := range []struct {
		route, method, code string
		want                float64
	}{
		{"/v1/orders/{id}", "GET", "200", 2},
		{"/v1/orders/{id}", "POST", "405", 1},
		{telemetry.RouteUnmatched, "GET", "404", 2},
	} {
		if v, _ := sample(t, g, "sagittarius_http_requests_total", map[string]string{"route": c.route, "method": c.method, "code": c.code}); v != c.want {
			t.Errorf("requests{route=%s,method=%s,code=%s} = %v, want %v", c.route, c.method, c.code, v, c.want)
		}
	}
	if v, _ := sample(t, g, "sagittarius_http_request_duration_seconds", map[string]string{"route": "/v1/orders/{id}", "method": "GET"}); v != 2 {
		t.Errorf("duration samples = %v, want 2", v)
	}

	// /metrics is served in the text format, not counted, and holds no raw path.
	res, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	text := string(body)
	if res.StatusCode != http.StatusOK || !strings.Contains(text, `sagittarius_http_requests_total{code="200",method="GET",route="/v1/orders/{id}",service="test.http"} 2`) {
		t.Errorf("GET /metrics: %d\n%s", res.StatusCode, text)
	}
	for _, raw := range []string{"a1", "b2", "x1", `route="/metrics"`} {
		if strings.Contains(text, raw) {
			t.Errorf("/metrics mentions %s", raw)
		}
	}
}

// BenchmarkUnhandled measures what counting an unhandled delivery adds to
// the bus's hottest path (an interface call and an atomic add on a counter
// resolved at start), next to the atomic add the bus always did.
func BenchmarkUnhandled(b *testing.B) {
	tel, err := telemetry.New(context.Background(), telemetry.Config{Service: "bench.unhandled"})
	if err != nil {
		b.Fatal(err)
	}
	obs := tel.BusObserver()
	b.Run("observer", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				obs.Unhandled()
			}
		})
	})
	b.Run("label-lookup-for-comparison", func(b *testing.B) {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"type", "outcome"})
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				v.WithLabelValues("some.service.some_event", "unhandled").Inc()
			}
		})
	})
}
