package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/telemetry"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

var widgetSeen = eventbus.MustEventType[widget]("test.consumer", "widget_seen", "widget")

// service is one traced process of the test: telemetry, database, bus and
// relay.
type service struct {
	tel   *telemetry.T
	db    *sqlx.DB
	bus   *eventbus.Bus
	relay *eventbus.Relay
}

func newService(t *testing.T, name, url string, exp sdktrace.SpanExporter, register func(s *service)) *service {
	t.Helper()
	tel, err := telemetry.New(context.Background(), telemetry.Config{Service: name, Exporter: exp, Logger: quiet(),
		Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	s := &service{tel: tel, db: testinfra.NewDatabase(t)}
	if err := eventbus.Migrate(context.Background(), s.db); err != nil {
		t.Fatal(err)
	}
	if s.bus, err = eventbus.New(tel.BusConfig(eventbus.Config{URL: url, Service: name, Logger: quiet()})); err != nil {
		t.Fatal(err)
	}
	if s.relay, err = eventbus.NewRelay(s.db, s.bus, eventbus.RelayConfig{Logger: quiet(), PollInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	register(s)
	runBus(t, s.bus)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.relay.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// enqueue is a store method: one transaction writing the event to the outbox.
func (s *service) enqueue(ctx context.Context, m eventbus.Message) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := eventbus.Enqueue(ctx, tx, m); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.relay.Notify()
	return nil
}

// TestOneTraceThroughHTTPOutboxAndBus follows one request in process, on a
// real broker and databases: POST with a client's traceparent → server span
// → create span (its context stored with the outbox row) → publish span →
// process span in the consuming service → the create and publish spans of
// the event its handler causes. Every span must be in the client's trace,
// each the child of the one before, with the messaging attributes.
func TestOneTraceThroughHTTPOutboxAndBus(t *testing.T) {
	url, _ := testinfra.NewVhost(t)
	exp := tracetest.NewInMemoryExporter()

	consumer := newService(t, "test.consumer", url, exp, func(s *service) {
		if err := s.bus.Publishes(widgetSeen); err != nil {
			t.Fatal(err)
		}
		if err := eventbus.HandleTx(s.bus, s.db, widgetMade, func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[widget]) error {
			m, err := widgetSeen.New(ctx, ev.Entity)
			if err != nil {
				return err
			}
			return eventbus.Enqueue(ctx, tx, m)
		}); err != nil {
			t.Fatal(err)
		}
	})
	var made eventbus.Message
	producer := newService(t, "test.widgets", url, exp, func(s *service) {
		if err := s.bus.Publishes(widgetMade); err != nil {
			t.Fatal(err)
		}
	})
	rt := httpkit.NewRouter()
	rt.HandleFunc("POST /v1/widgets", func(w http.ResponseWriter, r *http.Request) {
		m, err := widgetMade.New(r.Context(), widget{ID: "w1"})
		if err == nil {
			err = producer.enqueue(r.Context(), m)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		made = m
		w.WriteHeader(http.StatusCreated)
	})
	srv := httptest.NewServer(producer.tel.Middleware(httpkit.Stack(rt, httpkit.Options{Logger: quiet(),
		WithRequestID: eventbus.WithCorrelationID, WithTraceparent: eventbus.WithTraceparent})))
	defer srv.Close()

	const clientTrace, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/widgets", nil)
	req.Header.Set("Traceparent", "00-"+clientTrace+"-"+clientSpan+"-01")
	req.Header.Set("X-Request-Id", "req-trace-1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d", res.StatusCode)
	}

	// Wait for the last span of the chain: widget_seen published.
	var spans tracetest.SpanStubs
	deadline := time.Now().Add(20 * time.Second)
	for {
		_ = consumer.tel.Flush(context.Background())
		_ = producer.tel.Flush(context.Background())
		spans = exp.GetSpans()
		if find(spans, "publish "+widgetSeen.Info().Type()) != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no publish span of widget_seen after 20 s; spans: %v", names(spans))
		}
		time.Sleep(100 * time.Millisecond)
	}

	server := find(spans, "POST /v1/widgets")
	create := find(spans, "create "+made.Type)
	publish := find(spans, "publish "+made.Type)
	process := find(spans, "process "+made.Type)
	create2 := find(spans, "create "+widgetSeen.Info().Type())
	publish2 := find(spans, "publish "+widgetSeen.Info().Type())
	chain := []struct {
		name string
		s    *tracetest.SpanStub
		kind trace.SpanKind
	}{
		{"server", server, trace.SpanKindServer}, {"create", create, trace.SpanKindProducer},
		{"publish", publish, trace.SpanKindProducer}, {"process", process, trace.SpanKindConsumer},
		{"create (caused)", create2, trace.SpanKindProducer}, {"publish (caused)", publish2, trace.SpanKindProducer},
	}
	for _, c := range chain {
		if c.s == nil {
			t.Fatalf("no %s span; spans: %v", c.name, names(spans))
		}
		if got := c.s.SpanContext.TraceID().String(); got != clientTrace {
			t.Errorf("%s span in trace %s, want the client's %s", c.name, got, clientTrace)
		}
		if c.s.SpanKind != c.kind {
			t.Errorf("%s span kind %v, want %v", c.name, c.s.SpanKind, c.kind)
		}
	}
	if got := server.Parent.SpanID().String(); got != clientSpan {
		t.Errorf("server span's parent %s, want the client's span %s", got, clientSpan)
	}
	for i := 1; i < len(chain); i++ {
		if chain[i].s.Parent.SpanID() != chain[i-1].s.SpanContext.SpanID() {
			t.Errorf("%s span's parent is %s, want the %s span %s", chain[i].name, chain[i].s.Parent.SpanID(), chain[i-1].name, chain[i-1].s.SpanContext.SpanID())
		}
	}
	if got := attr(server, "http.route"); got != "/v1/widgets" {
		t.Errorf("server span http.route = %q", got)
	}
	if server.Resource.String() == process.Resource.String() {
		t.Errorf("server and process spans have the same resource %s: want each service's", server.Resource)
	}
	for _, c := range []struct {
		s         *tracetest.SpanStub
		op, dest  string
		messageID string
	}{
		{create, "create", "sagittarius-a", made.ID}, {publish, "publish", "sagittarius-a", made.ID},
		{process, "process", "sagittarius-a", made.ID},
	} {
		for k, want := range map[string]string{
			"messaging.system": "rabbitmq", "messaging.operation": c.op, "messaging.destination.name": c.dest,
			"messaging.message.id": c.messageID, "messaging.message.conversation_id": "req-trace-1",
		} {
			if got := attr(c.s, k); got != want {
				t.Errorf("%s span: %s = %q, want %q", c.s.Name, k, got, want)
			}
		}
	}
	if got := attr(process, "messaging.consumer.group.name"); got != "test.consumer" {
		t.Errorf("process span: consumer group %q, want the queue test.consumer", got)
	}

	// The trace context was stored with the row when it was written: the
	// create span's, not one made up at relay time.
	var stored string
	if err := producer.db.Get(&stored, `SELECT traceparent FROM eventbus_outbox WHERE uuid = ?`, made.ID); err != nil {
		t.Fatal(err)
	}
	if want := "00-" + clientTrace + "-" + create.SpanContext.SpanID().String() + "-01"; stored != want {
		t.Errorf("outbox row traceparent %q, want the create span's %q", stored, want)
	}
}

func find(spans tracetest.SpanStubs, name string) *tracetest.SpanStub {
	for i := range spans {
		if spans[i].Name == name {
			return &spans[i]
		}
	}
	return nil
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func attr(s *tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == attribute.Key(key) {
			return kv.Value.Emit()
		}
	}
	return ""
}

// TestTracingOffByDefault: without an endpoint nothing is set up, and the
// bus gets no tracer provider.
func TestTracingOffByDefault(t *testing.T) {
	for _, env := range []map[string]string{
		{},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
	} {
		tel := newTelemetry(t, "test.off", func(k string) string { return env[k] })
		if tel.Tracing() || tel.TracerProvider() != nil || tel.BusConfig(eventbus.Config{}).TracerProvider != nil {
			t.Errorf("%v: tracing on", env)
		}
	}
	tel := newTelemetry(t, "test.on", func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}[k]
	})
	if !tel.Tracing() {
		t.Error("OTEL_EXPORTER_OTLP_ENDPOINT set: tracing off")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, env := range []map[string]string{
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_TRACES_SAMPLER": "sometimes"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
		{"OTEL_TRACES_EXPORTER": "zipkin"},
	} {
		if _, err := telemetry.New(context.Background(), telemetry.Config{Service: "test.bad", Getenv: func(k string) string { return env[k] }}); err == nil {
			t.Errorf("%v: no error", env)
		}
	}
	if got := telemetry.TracesEndpoint(func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}[k]
	}); got != "http://c:4318/v1/traces" {
		t.Errorf("endpoint %q", got)
	}
	if got := telemetry.TracesEndpoint(func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/x"}[k]
	}); got != "http://t:1/x" {
		t.Errorf("traces endpoint %q", got)
	}
}

// TestDefaultSampler: unset, one new trace in ten is sampled, and a trace
// whose parent was sampled always is.
func TestDefaultSampler(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tel, err := telemetry.New(context.Background(), telemetry.Config{Service: "test.sampler", Exporter: exp, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	tr := tel.TracerProvider().Tracer("test")
	roots := 0
	for range 2000 {
		_, s := tr.Start(context.Background(), "root")
		if s.SpanContext().IsSampled() {
			roots++
		}
		s.End()
	}
	if roots < 120 || roots > 300 {
		t.Errorf("%d of 2000 new traces sampled, want about %v", roots, 2000*telemetry.DefaultSampleRatio)
	}
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true})
	for range 100 {
		_, s := tr.Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), "child")
		if !s.SpanContext().IsSampled() {
			t.Fatal("a child of a sampled parent was not sampled")
		}
		s.End()
	}
}

// TestMetricsOff: SAGITTARIUS_METRICS=off leaves the bus without observer
// and serves no /metrics.
func TestMetricsOff(t *testing.T) {
	tel := newTelemetry(t, "test.off", func(k string) string { return map[string]string{"SAGITTARIUS_METRICS": "off"}[k] })
	if tel.BusConfig(eventbus.Config{}).Observer != nil {
		t.Error("bus observer set")
	}
	rec := httptest.NewRecorder()
	tel.Middleware(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("/metrics: %d", rec.Code)
	}
}
