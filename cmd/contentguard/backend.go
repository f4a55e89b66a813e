package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/contentguard/contentguard/backend/api"
	"github.com/contentguard/contentguard/backend/cache"
	"github.com/contentguard/contentguard/backend/host"
	"github.com/contentguard/contentguard/telemetry"
)

// version is stamped at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

const backendHelp = `Usage: contentguard backend [flags]

Runs the text-analysis backend (see docs/backend.md).

Where it listens (first match wins):
  AWS_LAMBDA_FUNCTION_NAME set      serve API Gateway v1/v2 events (no listener)
  --listen ADDR given explicitly    that address
  FUNCTIONS_CUSTOMHANDLER_PORT      127.0.0.1:<port> (Azure Functions custom handler)
  PORT                              :<port> (Cloud Run, Knative)
  otherwise                         ` + host.DefaultListen + `

Environment: REDIS_URL (result cache in Redis), SERVICE_NAME, SERVICE_VERSION,
LOG_LEVEL (debug|info|warn|error), OTEL_EXPORTER_OTLP_ENDPOINT and the other
OTEL_* variables (traces over OTLP/HTTP).

Flags:
`

func runBackend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", host.DefaultListen, "listen address (wins over PORT when given)")
	maxBody := fs.Int64("max-body-bytes", api.DefaultMaxBodyBytes, "request body limit in bytes (413 beyond)")
	cacheTTL := fs.Duration("cache-ttl", api.DefaultCacheTTL, "result cache time to live")
	cacheEntries := fs.Int("cache-entries", api.DefaultCacheMaxEntries, "in-memory result cache bound (entries)")
	shutdown := fs.Duration("shutdown-timeout", 20*time.Second, "grace period for in-flight requests on SIGTERM")
	logLevel := fs.String("log-level", envOr("LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprint(stdout, backendHelp)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "contentguard backend: unexpected arguments %q\n", fs.Args())
		return 2
	}
	explicitListen := ""
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "listen" {
			explicitListen = *listen
		}
	})

	logger := telemetry.NewLogger(stderr, telemetry.ParseLevel(*logLevel))
	service := envOr("SERVICE_NAME", "contentguard-backend")
	ver := envOr("SERVICE_VERSION", version)
	tracing, err := telemetry.SetupTracing(ctx, service, ver)
	if err != nil {
		logger.Error("tracing set-up failed", "err", err)
		return 1
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			logger.Warn("flushing spans", "err", err)
		}
	}()

	cfg := api.Config{Service: service, Version: ver, Logger: logger, Tracing: tracing, MaxBodyBytes: *maxBody}
	if url := os.Getenv("REDIS_URL"); url != "" {
		client, err := cache.NewRedisFromURL(url)
		if err != nil {
			logger.Error("redis cache", "err", err)
			return 1
		}
		defer client.Close()
		cfg.Cache, cfg.CacheKind = cache.NewRedis(client, "contentguard:cache:", *cacheTTL), "redis"
	} else {
		cfg.Cache, cfg.CacheKind = cache.NewMemory(*cacheEntries, *cacheTTL), "memory"
	}
	srv, err := api.New(cfg)
	if err != nil {
		logger.Error("backend set-up failed", "err", err)
		return 1
	}

	mode, addr := host.Detect(explicitListen, os.Getenv)
	logger.Info("starting backend", "mode", string(mode), "addr", addr, "version", ver, "cache", cfg.CacheKind, "tracing", tracing.Exporting())
	err = host.Run(ctx, mode, addr, srv.Handler(), host.Options{
		ShutdownTimeout: *shutdown,
		Logger:          logger,
		Ready:           func(a net.Addr) { logger.Info("ready", "addr", a.String()) },
	})
	if err != nil {
		logger.Error("backend stopped", "err", err)
		return 1
	}
	logger.Info("backend stopped cleanly")
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
