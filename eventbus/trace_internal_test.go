package eventbus

import (
	"context"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestTraceparentRoundTrip(t *testing.T) {
	for _, tp := range []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
	} {
		sc := parseTraceparent(tp)
		if !sc.IsValid() || !sc.IsRemote() {
			t.Fatalf("%s: invalid %v", tp, sc)
		}
		if got := formatTraceparent(sc); got != tp {
			t.Errorf("format(parse(%s)) = %s", tp, got)
		}
	}
	for _, bad := range []string{"", "00-xyz", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		if parseTraceparent(bad).IsValid() {
			t.Errorf("%q parsed as valid", bad)
		}
	}
}

// TestTraceparentPrefersTheSpan: the context's OpenTelemetry span wins over
// a traceparent stored by WithTraceparent, and a child keeps the trace id
// and the sampled flag of its parent.
func TestTraceparentPrefersTheSpan(t *testing.T) {
	stored := "00-11111111111111111111111111111111-2222222222222222-01"
	ctx := WithTraceparent(context.Background(), stored)
	if got := Traceparent(ctx); got != stored {
		t.Fatalf("Traceparent = %s, want the stored %s", got, stored)
	}
	span := parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	ctx = trace.ContextWithSpanContext(ctx, span)
	if got := Traceparent(ctx); got != formatTraceparent(span) {
		t.Errorf("Traceparent = %s, want the span's", got)
	}
	child := childTraceparent(Traceparent(ctx))
	if !strings.HasPrefix(child, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || !strings.HasSuffix(child, "-00") || child[36:52] == "00f067aa0ba902b7" {
		t.Errorf("child %s: want the parent's trace and flags, a new span id", child)
	}
}

// BenchmarkProcessSpan is what tracing adds to one handled delivery: the
// consumer span, started from the message's traceparent and ended with its
// outcome, recorded and batched (the exporter discards).
func BenchmarkProcessSpan(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	defer tp.Shutdown(context.Background())
	bus := &Bus{cfg: Config{Service: "bench.consumer"}, tracer: tp.Tracer(instrumentationScope)}
	d := &amqp.Delivery{Exchange: Exchange, MessageId: "7f0c1e9a-8a8b-4d47-9a51-0c5c1f2e3d4a", Type: "bench.publisher.thing_happened",
		Headers: amqp.Table{HeaderTraceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", HeaderCorrelationID: "c-1"},
		Body:    make([]byte, 600)}
	for _, flags := range []string{"01", "00"} {
		name := map[string]string{"01": "sampled", "00": "sampled-out"}[flags]
		b.Run(name, func(b *testing.B) {
			d.Headers[HeaderTraceparent] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-" + flags
			b.ReportAllocs()
			for b.Loop() {
				_, span := bus.startProcess(context.Background(), d, 1)
				endProcess(span, OutcomeHandled, nil)
			}
		})
	}
}

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }
