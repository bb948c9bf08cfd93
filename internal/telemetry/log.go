package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
)

// LogHandler wraps h so that every record logged with a context (the
// *Context methods, LogAttrs) carries trace_id and span_id: those of the
// context's span when tracing is on, else those of the traceparent the
// request or event carried (eventbus.Traceparent, httpkit.TraceparentFrom),
// so that logs of one flow share a trace id even with tracing off.
func LogHandler(h slog.Handler) slog.Handler { return traceLogHandler{h} }

type traceLogHandler struct{ h slog.Handler }

func (l traceLogHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l traceLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		} else if tp := traceparentOf(ctx); tp != "" {
			r.AddAttrs(slog.String("trace_id", tp[3:35]), slog.String("span_id", tp[36:52]))
		}
	}
	return l.h.Handle(ctx, r)
}

func traceparentOf(ctx context.Context) string {
	if tp := eventbus.Traceparent(ctx); len(tp) == 55 {
		return tp
	}
	if tp := httpkit.TraceparentFrom(ctx); len(tp) == 55 {
		return tp
	}
	return ""
}

func (l traceLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceLogHandler{l.h.WithAttrs(attrs)}
}

func (l traceLogHandler) WithGroup(name string) slog.Handler {
	return traceLogHandler{l.h.WithGroup(name)}
}
