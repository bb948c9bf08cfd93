package eventbus

import (
	"context"
	"database/sql"
	"encoding/hex"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Tracing. The bus records OpenTelemetry spans that follow the OpenTelemetry
// messaging semantic conventions for RabbitMQ, and only depends on the
// OpenTelemetry API: the SDK and exporter are the application's
// (internal/telemetry). One trace follows an event through the choreography:
//
//	create <type>    (producer) Enqueue, in the transaction that writes the outbox
//	                 row, child of the span in ctx (an HTTP request, a handler).
//	                 Its context is stored WITH THE ROW (eventbus_outbox.traceparent).
//	publish <type>   (producer) the relay's publish, child of the stored context,
//	                 ended when the broker confirms; its context travels in the
//	                 message's traceparent header.
//	process <type>   (consumer) in every service that handles the event, child of
//	                 the traceparent header; events the handler enqueues are its
//	                 children, and so on.
//
// Without Config.TracerProvider the bus records no span and keeps the
// traceparent header as before: a child of the context's trace.

// instrumentationScope names the bus's tracer.
const instrumentationScope = "github.com/sagittarius-a/sagittarius/eventbus"

// Messaging semantic convention attribute keys.
const (
	attrSystem         = attribute.Key("messaging.system")
	attrDestination    = attribute.Key("messaging.destination.name")
	attrOperation      = attribute.Key("messaging.operation")
	attrOperationType  = attribute.Key("messaging.operation.type")
	attrOperationName  = attribute.Key("messaging.operation.name")
	attrMessageID      = attribute.Key("messaging.message.id")
	attrConversationID = attribute.Key("messaging.message.conversation_id")
	attrRoutingKey     = attribute.Key("messaging.rabbitmq.destination.routing_key")
	attrConsumerGroup  = attribute.Key("messaging.consumer.group.name")
	attrBatchCount     = attribute.Key("messaging.batch.message_count")
	attrBodySize       = attribute.Key("messaging.message.body.size")
	attrEventType      = attribute.Key("sagittarius.event.type")
	attrOutcome        = attribute.Key("sagittarius.event.outcome")
	attrAttempt        = attribute.Key("sagittarius.event.attempt")
)

var systemRabbitMQ = attrSystem.String("rabbitmq")

// formatTraceparent formats sc as a W3C traceparent header value.
func formatTraceparent(sc trace.SpanContext) string {
	tid, sid := sc.TraceID(), sc.SpanID()
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags())})
	return string(b[:])
}

// parseTraceparent parses a W3C traceparent into a remote span context; the
// result is invalid (IsValid false) for anything else.
func parseTraceparent(tp string) trace.SpanContext {
	if !traceparentRE.MatchString(tp) {
		return trace.SpanContext{}
	}
	var tid trace.TraceID
	var sid trace.SpanID
	var flags [1]byte
	if _, err := hex.Decode(tid[:], []byte(tp[3:35])); err != nil {
		return trace.SpanContext{}
	}
	if _, err := hex.Decode(sid[:], []byte(tp[36:52])); err != nil {
		return trace.SpanContext{}
	}
	if _, err := hex.Decode(flags[:], []byte(tp[53:55])); err != nil {
		return trace.SpanContext{}
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags[0]), Remote: true})
}

// enqueueTrace starts the "create" span of an outbox write when ctx carries a
// recording span, and returns the trace context to store with the rows: the
// create span's, or the context's own when it is valid but not recorded
// (sampled out, or tracing off with a propagated traceparent), or NULL when
// ctx has no trace at all (the header's traceparent is then used as is).
// end must be called with the write's error.
func enqueueTrace(ctx context.Context, msgs []Message) (stored sql.NullString, end func(error)) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		if sc := parent.SpanContext(); sc.IsValid() {
			return sql.NullString{String: formatTraceparent(sc), Valid: true}, func(error) {}
		}
		return sql.NullString{}, func(error) {}
	}
	name := "create " + Exchange
	attrs := []attribute.KeyValue{systemRabbitMQ, attrDestination.String(Exchange),
		attrOperation.String("create"), attrOperationType.String("create"), attrOperationName.String("create")}
	if len(msgs) == 1 {
		m := msgs[0]
		name = "create " + m.Type
		attrs = append(attrs, attrMessageID.String(m.ID), attrEventType.String(m.Type),
			attrConversationID.String(m.Headers[HeaderCorrelationID]), attrBodySize.Int(len(m.Body)))
	} else {
		attrs = append(attrs, attrBatchCount.Int(len(msgs)))
	}
	_, span := parent.TracerProvider().Tracer(instrumentationScope).Start(ctx, name,
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	return sql.NullString{String: formatTraceparent(span.SpanContext()), Valid: true}, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// withStoredTrace makes the trace context stored with an outbox row the
// message's traceparent: the publish span (or, without tracing, the
// consumers) continue the trace of the transaction that wrote the row.
func withStoredTrace(m Message, stored sql.NullString) Message {
	if stored.Valid && traceparentRE.MatchString(stored.String) {
		if m.Headers == nil {
			m.Headers = make(map[string]string, 1)
		}
		m.Headers[HeaderTraceparent] = stored.String
	}
	return m
}

// startPublish starts the publish span of m, child of m's traceparent, and
// puts the span's context into p's traceparent header. Only called when the
// bus has a tracer.
func (b *Bus) startPublish(m *Message, p *amqp.Publishing) trace.Span {
	ctx := context.Background()
	if sc := parseTraceparent(m.Headers[HeaderTraceparent]); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	_, span := b.tracer.Start(ctx, "publish "+m.Type, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() { // attributes only for spans that are kept: most are not, at the default sampling
		span.SetAttributes(systemRabbitMQ, attrDestination.String(Exchange),
			attrOperation.String("publish"), attrOperationType.String("send"), attrOperationName.String("publish"),
			attrMessageID.String(m.ID), attrConversationID.String(m.Headers[HeaderCorrelationID]),
			attrEventType.String(m.Type), attrBodySize.Int(len(m.Body)))
	}
	if sc := span.SpanContext(); sc.IsValid() {
		p.Headers[HeaderTraceparent] = formatTraceparent(sc)
	}
	return span
}

// endSpan ends span with err as its status.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// startProcess starts the consumer span of delivery d in the service's
// queue, child of the message's traceparent header. Only called when the bus
// has a tracer.
func (b *Bus) startProcess(ctx context.Context, d *amqp.Delivery, attempt int) (context.Context, trace.Span) {
	if sc := parseTraceparent(headerString(d.Headers, HeaderTraceparent)); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	ctx, span := b.tracer.Start(ctx, "process "+d.Type, trace.WithSpanKind(trace.SpanKindConsumer))
	if !span.IsRecording() { // sampled out: no attributes to build
		return ctx, span
	}
	span.SetAttributes(systemRabbitMQ, attrDestination.String(d.Exchange),
		attrOperation.String("process"), attrOperationType.String("process"), attrOperationName.String("process"),
		attrConsumerGroup.String(b.cfg.Service), attrMessageID.String(d.MessageId),
		attrConversationID.String(headerString(d.Headers, HeaderCorrelationID)),
		attrEventType.String(d.Type), attrBodySize.Int(len(d.Body)), attrAttempt.Int(attempt))
	if d.RoutingKey != "" {
		span.SetAttributes(attrRoutingKey.String(d.RoutingKey))
	}
	return ctx, span
}

// endProcess ends a consumer span with the delivery's outcome.
func endProcess(span trace.Span, o Outcome, err error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(attrOutcome.String(o.String()))
	if err != nil && err != errDuplicate {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
