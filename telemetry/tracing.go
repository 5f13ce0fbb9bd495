package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
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

// Shutdown flushes the spans not yet exported and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// SetupTracing configures tracing from the standard OTEL_* variables, read
// with getenv (so that a caller's environment, not only the process's, is
// honoured):
//
//   - OTEL_TRACES_EXPORTER: "otlp" or "none"; OTEL_SDK_DISABLED=true is "none".
//     Without it, spans are exported when an OTLP endpoint is set, and go
//     nowhere otherwise.
//   - OTEL_EXPORTER_OTLP_ENDPOINT (the base URL; "/v1/traces" is added for
//     HTTP) or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the full URL).
//   - OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL: "http/protobuf" (the default) or
//     "grpc"; OTEL_EXPORTER_OTLP_[TRACES_]HEADERS ("k=v,k2=v2");
//     OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT (milliseconds);
//     OTEL_EXPORTER_OTLP_[TRACES_]INSECURE for an endpoint without a scheme.
//   - OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default
//     parentbased_always_on) decide for successful spans: a failed attempt
//     is exported whatever they say (see keepfailures.go).
//   - OTEL_SERVICE_NAME (default service) and OTEL_RESOURCE_ATTRIBUTES.
//
// TLS certificates and compression are left to the exporter, which reads
// them from the process environment.
func SetupTracing(ctx context.Context, service string, getenv func(string) string) (*Tracing, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	// The signal-specific variable wins over the generic one.
	traces := func(k string) string {
		if v := get("OTEL_EXPORTER_OTLP_TRACES_" + k); v != "" {
			return v
		}
		return get("OTEL_EXPORTER_OTLP_" + k)
	}
	none := &Tracing{Provider: noop.NewTracerProvider()}
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return none, nil
	}
	exp := get("OTEL_TRACES_EXPORTER")
	tracesEndpoint, baseEndpoint := get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), get("OTEL_EXPORTER_OTLP_ENDPOINT")
	switch {
	case exp == "none":
		return none, nil
	case exp == "" && tracesEndpoint == "" && baseEndpoint == "":
		return none, nil
	case exp != "" && exp != "otlp":
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER %q: waq supports otlp or none", exp)
	}

	proto := traces("PROTOCOL")
	if proto == "" {
		proto = "http/protobuf"
	}
	if proto != "http/protobuf" && proto != "grpc" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: want grpc or http/protobuf", proto)
	}
	// endpoint is a URL with a scheme, or host:port (gRPC's usual form).
	endpoint, endpointVar := tracesEndpoint, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	if endpoint == "" && baseEndpoint != "" {
		endpoint, endpointVar = baseEndpoint, "OTEL_EXPORTER_OTLP_ENDPOINT"
		if proto == "http/protobuf" {
			// The generic endpoint is a base URL; the spec appends the
			// signal's path to it.
			endpoint = strings.TrimRight(endpoint, "/") + "/v1/traces"
		}
	}
	headers, err := parsePairs(traces("HEADERS"))
	if err != nil {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_HEADERS: %w", err)
	}
	var timeout time.Duration
	if v := traces("TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_TIMEOUT %q: want a positive number of milliseconds", v)
		}
		timeout = time.Duration(ms) * time.Millisecond
	}
	insecure := strings.EqualFold(traces("INSECURE"), "true")
	withScheme := strings.Contains(endpoint, "://")
	if withScheme {
		if _, err := url.Parse(endpoint); err != nil {
			return nil, fmt.Errorf("%s: %w", endpointVar, err)
		}
	}

	var exporter *otlptrace.Exporter
	if proto == "grpc" {
		var opts []otlptracegrpc.Option
		switch {
		case withScheme:
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		case endpoint != "":
			opts = append(opts, otlptracegrpc.WithEndpoint(endpoint))
			if insecure {
				opts = append(opts, otlptracegrpc.WithInsecure())
			}
		}
		if len(headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(headers))
		}
		if timeout > 0 {
			opts = append(opts, otlptracegrpc.WithTimeout(timeout))
		}
		exporter, err = otlptracegrpc.New(ctx, opts...)
	} else {
		var opts []otlptracehttp.Option
		switch {
		case withScheme:
			opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
		case endpoint != "":
			return nil, fmt.Errorf("%s %q: want a URL such as http://127.0.0.1:4318", endpointVar, endpoint)
		}
		if len(headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(headers))
		}
		if timeout > 0 {
			opts = append(opts, otlptracehttp.WithTimeout(timeout))
		}
		exporter, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	sampler, err := parseSampler(get("OTEL_TRACES_SAMPLER"), get("OTEL_TRACES_SAMPLER_ARG"))
	if err != nil {
		_ = exporter.Shutdown(ctx)
		return nil, err
	}
	res, err := tracingResource(ctx, service, get("OTEL_SERVICE_NAME"), get("OTEL_RESOURCE_ATTRIBUTES"))
	if err != nil {
		_ = exporter.Shutdown(ctx)
		return nil, err
	}
	// Failed attempts are exported whatever the sampler says (keepfailures.go).
	tp := sdktrace.NewTracerProvider(append(KeepFailures(sdktrace.NewBatchSpanProcessor(exporter), sampler), sdktrace.WithResource(res))...)
	return &Tracing{Provider: tp, Exporting: true, shutdown: tp.Shutdown}, nil
}

// tracingResource describes the process: service.name (OTEL_SERVICE_NAME,
// else a service.name in OTEL_RESOURCE_ATTRIBUTES, else service), the other
// OTEL_RESOURCE_ATTRIBUTES, the host name and the SDK.
func tracingResource(ctx context.Context, service, serviceEnv, attrsEnv string) (*resource.Resource, error) {
	pairs, err := parsePairs(attrsEnv)
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	attrs := make([]attribute.KeyValue, 0, len(pairs)+1)
	for k, v := range pairs {
		if k == "service.name" && serviceEnv == "" {
			service = v
			continue
		}
		attrs = append(attrs, attribute.String(k, v))
	}
	if serviceEnv != "" {
		service = serviceEnv
	}
	attrs = append(attrs, serviceName(service))
	// resource.New without WithFromEnv: the variables come from getenv, not
	// from the process.
	return resource.New(ctx, resource.WithTelemetrySDK(), resource.WithHost(), resource.WithAttributes(attrs...))
}

// parsePairs reads the "k=v,k2=v2" form of OTEL_RESOURCE_ATTRIBUTES and
// OTEL_EXPORTER_OTLP_HEADERS, values percent-decoded.
func parsePairs(s string) (map[string]string, error) {
	out := map[string]string{}
	for i, item := range strings.Split(s, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			// Named by position, never quoted: a header may be a credential.
			return nil, fmt.Errorf("item %d is not key=value", i+1)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("the value of %q is not percent-encoded correctly", k)
		}
		out[k] = dv
	}
	return out, nil
}

// parseSampler reads OTEL_TRACES_SAMPLER and its argument (the SDK's names).
func parseSampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		f, err := strconv.ParseFloat(arg, 64)
		if err != nil || f < 0 || f > 1 {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG %q: want a ratio from 0 to 1", arg)
		}
		return f, nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if name == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER %q: want always_on, always_off, traceidratio or their parentbased_ forms", name)
}
