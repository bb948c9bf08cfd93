package telemetry

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TracesEndpoint returns the URL spans are exported to according to the
// standard variables: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else
// OTEL_EXPORTER_OTLP_ENDPOINT + "/v1/traces", else "" (tracing off).
func TracesEndpoint(getenv func(string) string) string {
	if getenv == nil {
		return ""
	}
	if u := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")); u != "" {
		return u
	}
	if u := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")); u != "" {
		return strings.TrimSuffix(u, "/") + "/v1/traces"
	}
	return ""
}

// newTracerProvider returns the tracer provider the environment asks for,
// or nil when tracing is off.
func newTracerProvider(ctx context.Context, cfg Config) (*sdktrace.TracerProvider, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") && cfg.Exporter == nil {
		return nil, nil
	}
	exp := cfg.Exporter
	if exp == nil {
		switch e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e {
		case "", "otlp":
		case "none":
			return nil, nil
		default:
			return nil, fmt.Errorf("telemetry: OTEL_TRACES_EXPORTER %q: want otlp or none", e)
		}
		endpoint := TracesEndpoint(getenv)
		if endpoint == "" {
			return nil, nil
		}
		proto := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
		if proto == "" {
			proto = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
		}
		if proto != "" && proto != "http/protobuf" {
			return nil, fmt.Errorf("telemetry: OTLP protocol %q: only http/protobuf is supported", proto)
		}
		var err error
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP exporter for %s: %w", endpoint, err)
		}
	}
	sampler, err := samplerFrom(getenv)
	if err != nil {
		return nil, err
	}
	res := resource.NewSchemaless(attribute.String("service.name", cfg.Service))
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp), // OTEL_BSP_* tune it
		sdktrace.WithSampler(sampler),
		sdktrace.WithResource(res),
	), nil
}

// DefaultSampleRatio is the ratio of new traces sampled when
// OTEL_TRACES_SAMPLER is not set.
const DefaultSampleRatio = 0.1

// samplerFrom reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (the
// OpenTelemetry specification's values). Unset, it is
// parentbased_traceidratio with DefaultSampleRatio (or the ARG).
func samplerFrom(getenv func(string) string) (sdktrace.Sampler, error) {
	name := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER"))
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := 1.0
	if name == "" {
		name, ratio = "parentbased_traceidratio", DefaultSampleRatio
	}
	if strings.HasSuffix(name, "traceidratio") && arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("telemetry: OTEL_TRACES_SAMPLER_ARG %q: want a ratio from 0 to 1", arg)
		}
		ratio = r
	}
	switch name {
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	default:
		return nil, fmt.Errorf("telemetry: OTEL_TRACES_SAMPLER %q: want always_on, always_off, traceidratio or parentbased_<one of them>", name)
	}
}
