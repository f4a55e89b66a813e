package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Tracing is one process's OpenTelemetry tracing: a provider (exporting over
// OTLP/HTTP, or a no-op one that still propagates trace context) and the W3C
// propagator. It is a value the caller passes around, not a global.
type Tracing struct {
	Provider   trace.TracerProvider
	Propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// Exporting reports whether spans are recorded and exported.
func (t *Tracing) Exporting() bool { return t.shutdown != nil }

// SetupTracing builds tracing for service at version from the standard
// OpenTelemetry environment: when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, spans go through a batching
// OTLP/HTTP (protobuf) exporter configured by the usual OTEL_EXPORTER_OTLP_*
// variables, sampled by OTEL_TRACES_SAMPLER (default parent-based always-on);
// otherwise the provider is a no-op and only the W3C traceparent/tracestate
// and baggage of incoming requests are carried through. OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override service and add resource attributes.
// gRPC export (OTEL_EXPORTER_OTLP_PROTOCOL=grpc) is refused with an error
// rather than silently sent over HTTP.
//
// OTLP_ENDPOINT, the variable of the service contentguard replaces, is
// read when neither standard variable is set, with the meaning of
// OTEL_EXPORTER_OTLP_ENDPOINT: the base URL of an OTLP/HTTP receiver
// (Jaeger: http://jaeger:4318), to which /v1/traces is added.
func SetupTracing(ctx context.Context, service, version string) (*Tracing, error) {
	t := &Tracing{
		Provider:   tracenoop.NewTracerProvider(),
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	var opts []otlptracehttp.Option
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		legacy := strings.TrimSpace(os.Getenv("OTLP_ENDPOINT"))
		if legacy == "" {
			return t, nil
		}
		u, err := url.Parse(legacy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("telemetry: OTLP_ENDPOINT %q is not an http(s) URL", legacy)
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(legacy, "/")+"/v1/traces"))
	}
	if p := firstEnv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "http/protobuf" {
		return nil, fmt.Errorf("telemetry: OTLP protocol %q is not supported, use http/protobuf", p)
	}
	exporter, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
	}
	res, err := resource.Merge(
		resource.NewSchemaless(semconv.ServiceName(service), semconv.ServiceVersion(version)),
		mustEnvResource(ctx),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: trace resource: %w", err)
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	t.Provider = provider
	t.shutdown = provider.Shutdown
	return t, nil
}

// mustEnvResource reads OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES; a
// malformed variable only loses those attributes.
func mustEnvResource(ctx context.Context) *resource.Resource {
	r, err := resource.New(ctx, resource.WithFromEnv())
	if err != nil && r == nil {
		return resource.Empty()
	}
	return r
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(os.Getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

// Shutdown flushes buffered spans and stops the exporter; safe on a no-op
// Tracing and on nil.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	if err := t.shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("telemetry: flush spans: %w", err)
	}
	return nil
}

// Tracer returns a named tracer from the provider.
func (t *Tracing) Tracer(name string) trace.Tracer { return t.Provider.Tracer(name) }

// Middleware starts a server span per request (otelhttp), continuing the
// trace of an incoming traceparent. Route renames the span once routed.
func (t *Tracing) Middleware(next http.Handler) http.Handler {
	return otelhttp.NewHandler(next, "http.server",
		otelhttp.WithTracerProvider(t.Provider),
		otelhttp.WithPropagators(t.Propagator),
		otelhttp.WithMeterProvider(noop.NewMeterProvider()), // HTTP metrics are Prometheus's job here
	)
}
