// Package telemetry is the observability kit shared by every contentguard
// binary: JSON logs that carry the request ID by themselves, the request-ID
// middleware, Prometheus HTTP metrics on a registry the caller owns, and
// OpenTelemetry tracing with W3C trace-context propagation.
//
// Nothing here touches process-wide state. Each constructor takes what it
// writes to (an io.Writer, a prometheus.Registerer, a TracerProvider) so two
// servers in one test process never share a counter or a span exporter; main
// may still install the returned provider and propagator as otel's globals for
// third-party libraries.
//
// A typical chain, outermost first:
//
//	RequestID → Tracing.Middleware → Metrics.Middleware → AccessLog → recover → mux
//
// with every mux route wrapped in Route(pattern, handler) so metrics, logs and
// span names use the bounded route pattern, never the raw path.
package telemetry
