package exchange

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/telemetry"
	"github.com/contentguard/contentguard/telemetry/edgemetrics"
)

// Recorder records requests the same way on both paths: a server span
// continuing the client's trace context, a client span around the upstream
// exchange whose context goes upstream, and at the end the HTTP metrics,
// the access log line and the span's attributes.
type Recorder struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	traced     bool // spans are recorded (an exporting provider)
	metrics    *telemetry.Metrics
	accessLog  bool
	alog       *accessLog // encodes the access log itself; nil: through log
	log        *slog.Logger
}

// RecorderOptions configure a Recorder.
type RecorderOptions struct {
	Tracing *telemetry.Tracing
	Metrics *telemetry.Metrics
	Logger  *slog.Logger
	// AccessLog, when set, receives the access log lines directly (see
	// sidecar.Options.AccessLog); DisableAccessLog turns them off.
	AccessLog        io.Writer
	DisableAccessLog bool
}

// NewRecorder returns a Recorder.
func NewRecorder(o RecorderOptions) *Recorder {
	r := &Recorder{
		tracer:     o.Tracing.Tracer("github.com/contentguard/contentguard/sidecar"),
		propagator: o.Tracing.Propagator,
		traced:     o.Tracing.Exporting(),
		metrics:    o.Metrics,
		accessLog:  !o.DisableAccessLog,
		log:        o.Logger,
	}
	if o.AccessLog != nil {
		r.alog = newAccessLog(o.AccessLog, o.Logger)
	}
	return r
}

// Traced reports whether spans are recorded; when they are not, the
// servers skip the span calls altogether.
func (r *Recorder) Traced() bool { return r.traced }

// StartServer continues the trace context of the request's header in a
// server span.
func (r *Recorder) StartServer(ctx context.Context, header http.Header) (context.Context, trace.Span) {
	ctx = r.propagator.Extract(ctx, propagation.HeaderCarrier(header))
	return r.tracer.Start(ctx, "edge", trace.WithSpanKind(trace.SpanKindServer))
}

// StartClient starts the client span of an upstream exchange.
func (r *Recorder) StartClient(ctx context.Context, method, host string) (context.Context, trace.Span) {
	return r.tracer.Start(ctx, "upstream "+telemetry.BoundedMethod(method), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("server.address", host)))
}

// EndClient ends a client span, as failed when the exchange has a reason
// of its own (the upstream's or the client's failure).
func (r *Recorder) EndClient(x *Exchange, span trace.Span) {
	if x.Reason != "" {
		span.SetStatus(codes.Error, x.Reason)
	}
	span.End()
}

// Inject writes ctx's trace context into carrier (the forwarded headers).
func (r *Recorder) Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	r.propagator.Inject(ctx, carrier)
}

// Finish records the request: metrics, the access log line and the server
// span; it guarantees Observe for allowed forwards that ended abnormally
// (a panic in the proxy). local marks an in-process handler's request,
// which the upstream never saw.
func (r *Recorder) Finish(x *Exchange, method string, ctx context.Context, span trace.Span, start time.Time, local bool) {
	d := &x.Decision
	if d.Allow && !local && !x.observed {
		// Ended abnormally (a panic in the proxy): the slot is released,
		// not counted against the upstream.
		x.Observe(edge.Outcome{ClientFault: true, Status: edge.StatusClientClosed})
		x.Reason = edge.ReasonClientClosed
	}
	status := x.Status
	if status == 0 {
		status = http.StatusOK
	}
	elapsed := time.Since(start)
	route := edgemetrics.RouteLabel(d.Route)
	r.metrics.Record(method, route, status, elapsed)
	reason := d.Reason
	if x.Reason != "" {
		reason = x.Reason
	}
	if r.accessLog {
		e := accessEntry{
			time:      time.Now(),
			requestID: d.RequestID,
			method:    method,
			path:      d.Path,
			route:     route,
			decision:  decisionLabel(d),
			reason:    reason,
			status:    status,
			latency:   elapsed,
			clientIP:  clientIPString(d.ClientIP),
			subject:   d.Subject,
			bytes:     x.Written,
			fault:     x.Fault,
		}
		if r.alog != nil {
			e.span = trace.SpanContextFromContext(ctx)
			r.alog.log(ctx, &e)
		} else {
			e.slog(ctx, r.log)
		}
	}
	if span != nil {
		span.SetName(telemetry.BoundedMethod(method) + " " + route)
		span.SetAttributes(
			attribute.String("http.route", route),
			attribute.Int("http.response.status_code", status),
			attribute.String("contentguard.reason", reason),
			attribute.String("contentguard.request_id", d.RequestID),
		)
		if status >= 500 {
			span.SetStatus(codes.Error, reason)
		}
		span.End()
	}
}

func decisionLabel(d *edge.Decision) string {
	switch {
	case d.Allow:
		return "allow"
	case d.Reason == edge.ReasonPreflight:
		return "preflight"
	}
	return "reject"
}

func clientIPString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
