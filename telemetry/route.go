package telemetry

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// UnmatchedRoute is the route label of requests no route pattern matched
// (404s, 405s, and anything rejected before routing).
const UnmatchedRoute = "unmatched"

// routeSlot is filled in by Route deep inside the chain and read by the
// outer middleware after the handler returns; a pointer in the context is
// the only way back out through the r.WithContext copies in between.
type routeSlot struct{ pattern string }

type routeKey struct{}

// withRouteSlot returns ctx holding a route slot, reusing an existing one so
// several middlewares (metrics, access log) share the same answer.
func withRouteSlot(ctx context.Context) (context.Context, *routeSlot) {
	if s, ok := ctx.Value(routeKey{}).(*routeSlot); ok {
		return ctx, s
	}
	s := &routeSlot{}
	return context.WithValue(ctx, routeKey{}, s), s
}

func (s *routeSlot) label() string {
	if s.pattern == "" {
		return UnmatchedRoute
	}
	return s.pattern
}

// RouteFromContext returns the route pattern recorded for this request so
// far, or "" before routing.
func RouteFromContext(ctx context.Context) string {
	if s, ok := ctx.Value(routeKey{}).(*routeSlot); ok {
		return s.pattern
	}
	return ""
}

// Route wraps the handler registered for a mux pattern: it records the
// pattern for metrics and logs (bounded cardinality, unlike the raw path) and
// renames the active server span to "METHOD pattern" with http.route set.
// The pattern may carry a method ("POST /analyze"); the label keeps only the
// path part since the method is a label of its own.
func Route(pattern string, h http.Handler) http.Handler {
	path := pattern
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == ' ' {
			path = pattern[i+1:]
			break
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, ok := r.Context().Value(routeKey{}).(*routeSlot); ok {
			s.pattern = path
		}
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			span.SetName(r.Method + " " + path)
			span.SetAttributes(attribute.String("http.route", path))
		}
		h.ServeHTTP(w, r)
	})
}
