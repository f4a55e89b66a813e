package telemetry

import (
	"context"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// NewLogger returns a JSON slog.Logger writing to w at the given level whose
// records automatically carry request_id (and trace_id/span_id when a span is
// active) taken from the context passed to the *Context logging methods.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(NewContextHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})))
}

// ContextHandler decorates another slog.Handler with the correlation
// attributes found in a record's context, so call sites never have to pass
// the request ID by hand (and cannot forget it).
type ContextHandler struct{ next slog.Handler }

// NewContextHandler wraps next.
func NewContextHandler(next slog.Handler) *ContextHandler { return &ContextHandler{next: next} }

// Enabled reports whether next handles level.
func (h *ContextHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle adds request_id, trace_id and span_id from ctx, then delegates.
func (h *ContextHandler) Handle(ctx context.Context, rec slog.Record) error {
	if ctx != nil {
		if id := RequestIDFromContext(ctx); id != "" {
			rec.AddAttrs(slog.String("request_id", id))
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			rec.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	return h.next.Handle(ctx, rec)
}

// WithAttrs keeps the decoration on derived handlers.
func (h *ContextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &ContextHandler{next: h.next.WithAttrs(attrs)}
}

// WithGroup keeps the decoration on derived handlers.
func (h *ContextHandler) WithGroup(name string) slog.Handler {
	return &ContextHandler{next: h.next.WithGroup(name)}
}

// ParseLevel turns "debug", "info", "warn" or "error" into a slog.Level; an
// unknown or empty name is info.
func ParseLevel(name string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(name)); err != nil {
		return slog.LevelInfo
	}
	return l
}
