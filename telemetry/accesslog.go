package telemetry

import (
	"log/slog"
	"net/http"
	"time"
)

// AccessLog logs one JSON line per request at info level (5xx at error) with
// method, route, path, status, bytes and duration; request_id and trace_id
// come from the context through the logger's ContextHandler.
func AccessLog(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ctx, slot := withRouteSlot(r.Context())
			rec := NewStatusRecorder(w)
			defer func() {
				level := slog.LevelInfo
				if rec.Status() >= 500 {
					level = slog.LevelError
				}
				logger.LogAttrs(ctx, level, "http request",
					slog.String("method", r.Method),
					slog.String("route", slot.label()),
					slog.String("path", r.URL.Path),
					slog.Int("status", rec.Status()),
					slog.Int64("bytes", rec.Written()),
					slog.Float64("duration_seconds", time.Since(start).Seconds()),
				)
			}()
			next.ServeHTTP(rec, r.WithContext(ctx))
		})
	}
}
