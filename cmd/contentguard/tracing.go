package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/contentguard/contentguard/telemetry"
)

// startTracing sets up OpenTelemetry for one binary (OTLP when
// OTEL_EXPORTER_OTLP_ENDPOINT is set) and returns a flush to defer, which
// gives buffered spans five seconds to leave on the way out.
func startTracing(ctx context.Context, logger *slog.Logger, service, version string) (*telemetry.Tracing, func(), error) {
	tracing, err := telemetry.SetupTracing(ctx, service, version)
	if err != nil {
		logger.Error("tracing set-up failed", "err", err)
		return nil, nil, err
	}
	flush := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			logger.Warn("flushing spans", "err", err)
		}
	}
	return tracing, flush, nil
}
