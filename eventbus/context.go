package eventbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"

	"go.opentelemetry.io/otel/trace"
)

type ctxKey int

const (
	correlationKey ctxKey = iota
	causationKey
	traceparentKey
	actorKey
)

// actor is who acted: an access token's subject and role.
type actor struct{ subject, role string }

// WithActor returns a context whose events record who acted (headers
// actor_subject and actor_role): the service kit calls it with the
// principal of a request's verified access token. The events a consumer's
// handler publishes carry the actor of the event that caused them, so a
// whole business flow names the person or client who started it.
func WithActor(ctx context.Context, subject, role string) context.Context {
	if subject == "" {
		return ctx
	}
	return context.WithValue(ctx, actorKey, actor{subject, role})
}

// Actor returns the subject and role in ctx, or "", "".
func Actor(ctx context.Context) (subject, role string) {
	a, _ := ctx.Value(actorKey).(actor)
	return a.subject, a.role
}

// WithCorrelationID returns a context whose events carry id as their
// correlation id. HTTP middleware calls it with the request id, so every event
// of one business flow shares the id of the request that started it.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey, id)
}

// CorrelationID returns the correlation id in ctx, or "".
func CorrelationID(ctx context.Context) string {
	s, _ := ctx.Value(correlationKey).(string)
	return s
}

// WithTraceparent returns a context whose events continue the W3C trace of
// traceparent (as received in an HTTP traceparent header). An invalid value is
// ignored.
func WithTraceparent(ctx context.Context, traceparent string) context.Context {
	if !traceparentRE.MatchString(traceparent) {
		return ctx
	}
	return context.WithValue(ctx, traceparentKey, traceparent)
}

// Traceparent returns the W3C traceparent of ctx: that of its
// OpenTelemetry span when it has a valid one (an HTTP server span, a
// handler's consumer span), else the one stored by WithTraceparent, else "".
func Traceparent(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return formatTraceparent(sc)
	}
	s, _ := ctx.Value(traceparentKey).(string)
	return s
}

// withCause returns the context a handler runs in: events it creates are
// caused by the event with the given uuid and share its correlation id and
// trace.
func withCause(ctx context.Context, eventID, correlationID, traceparent string) context.Context {
	if correlationID == "" {
		correlationID = eventID
	}
	ctx = context.WithValue(ctx, correlationKey, correlationID)
	ctx = context.WithValue(ctx, causationKey, eventID)
	return WithTraceparent(ctx, traceparent)
}

var traceparentRE = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// outgoingHeaders builds the headers of a new event with the given uuid.
func outgoingHeaders(ctx context.Context, id string) map[string]string {
	h := make(map[string]string, 3)
	corr := CorrelationID(ctx)
	if corr == "" {
		corr = id
	}
	h[HeaderCorrelationID] = corr
	if cause, _ := ctx.Value(causationKey).(string); cause != "" {
		h[HeaderCausationID] = cause
	}
	h[HeaderTraceparent] = childTraceparent(Traceparent(ctx))
	if a, ok := ctx.Value(actorKey).(actor); ok {
		h[HeaderActorSubject] = a.subject
		if a.role != "" {
			h[HeaderActorRole] = a.role
		}
	}
	return h
}

// childTraceparent returns a traceparent for a new span: the trace id and
// flags of parent when valid, a new sampled trace id otherwise, and a new
// span id.
func childTraceparent(parent string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	tid, flags := hex.EncodeToString(b[:16]), "01"
	if traceparentRE.MatchString(parent) {
		tid, flags = parent[3:35], parent[53:55]
	}
	return "00-" + tid + "-" + hex.EncodeToString(b[16:]) + "-" + flags
}
