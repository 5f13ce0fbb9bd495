package telemetry

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is a configured tracer provider and how to flush it.
type Tracing struct {
	Provider trace.TracerProvider
	// Exporting is false when no exporter is configured (spans go nowhere).
	Exporting bool
	shutdown  func(context.Context) error
}

// Shutdown flushes and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// SetupTracing configures tracing from the standard OTEL_* variables: an OTLP
// exporter (OTEL_EXPORTER_OTLP_PROTOCOL grpc or http/protobuf, the default)
// when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
// set or OTEL_TRACES_EXPORTER is "otlp"; none otherwise, or when
// OTEL_TRACES_EXPORTER is "none". The sampler and resource come from the SDK's
// own reading of OTEL_TRACES_SAMPLER and OTEL_SERVICE_NAME /
// OTEL_RESOURCE_ATTRIBUTES.
func SetupTracing(ctx context.Context, service string, getenv func(string) string) (*Tracing, error) {
	exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") + getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	switch {
	case exp == "none":
		return &Tracing{Provider: noop.NewTracerProvider()}, nil
	case exp == "" && endpoint == "":
		return &Tracing{Provider: noop.NewTracerProvider()}, nil
	case exp != "" && exp != "otlp":
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER %q: waq supports otlp or none", exp)
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exporter *otlptrace.Exporter
		err      error
	)
	switch proto {
	case "", "http/protobuf":
		exporter, err = otlptracehttp.New(ctx)
	case "grpc":
		exporter, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: want grpc or http/protobuf", proto)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless())
	if err != nil {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	if getenv("OTEL_SERVICE_NAME") == "" && !strings.Contains(getenv("OTEL_RESOURCE_ATTRIBUTES"), "service.name=") {
		res, _ = resource.Merge(res, resource.NewSchemaless(serviceName(service)))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	return &Tracing{Provider: tp, Exporting: true, shutdown: tp.Shutdown}, nil
}
