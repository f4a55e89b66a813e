package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/hibiken/asynq"

	"github.com/contentguard/contentguard/backend/api"
	"github.com/contentguard/contentguard/backend/cache"
	"github.com/contentguard/contentguard/backend/host"
	"github.com/contentguard/contentguard/backend/jobs"
	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/internal/buildinfo"
	"github.com/contentguard/contentguard/telemetry"
)

const backendHelp = `Usage: contentguard backend [flags]

Runs the text-analysis backend (see docs/backend.md).

Where it listens (first match wins):
  AWS_LAMBDA_FUNCTION_NAME set      serve API Gateway v1/v2 events (no listener)
  --listen ADDR given explicitly    that address
  FUNCTIONS_CUSTOMHANDLER_PORT      127.0.0.1:<port> (Azure Functions custom handler)
  PORT                              :<port> (Cloud Run, Knative)
  otherwise                         ` + host.DefaultListen + `

Asynchronous jobs run in process by default; with REDIS_URL they go to Redis
(asynq) and this process also works them unless --api-worker=false;
--worker runs only a job worker (needs REDIS_URL or --redis).

Environment: REDIS_URL (result cache and job queue in Redis), SERVICE_NAME, SERVICE_VERSION,
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
	worker := fs.Bool("worker", false, "run only an asynchronous job worker (Redis), no HTTP API")
	redisURL := fs.String("redis", os.Getenv("REDIS_URL"), "Redis URL for the result cache and the job queue (default $REDIS_URL)")
	apiWorker := fs.Bool("api-worker", true, "with Redis, also run jobs in the API process")
	allowPrivate := fs.Bool("webhook-allow-private", os.Getenv("WEBHOOK_ALLOW_PRIVATE") == "true", "allow webhook URLs on private or loopback addresses (SSRF guard off)")
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
	ver := envOr("SERVICE_VERSION", buildinfo.Version())
	tracing, flush, err := startTracing(ctx, logger, service, ver)
	if err != nil {
		return 1
	}
	defer flush()

	cfg := api.Config{Service: service, Version: ver, Logger: logger, Tracing: tracing, MaxBodyBytes: *maxBody}
	if url := *redisURL; url != "" {
		client, err := cache.NewRedisFromURL(url)
		if err != nil {
			logger.Error("redis cache", "err", err)
			return 1
		}
		defer client.Close()
		cfg.Cache, cfg.CacheKind = cache.NewRedis(client, "contentguard:cache:", *cacheTTL), "redis"
		cfg.HealthChecks = map[string]func(context.Context) error{
			"redis": func(ctx context.Context) error { return client.Ping(ctx).Err() },
		}
	} else {
		cfg.Cache, cfg.CacheKind = cache.NewMemory(*cacheEntries, *cacheTTL), "memory"
	}
	srv, err := api.New(cfg)
	if err != nil {
		logger.Error("backend set-up failed", "err", err)
		return 1
	}

	guard := webhook.Guard{AllowPrivate: *allowPrivate}
	if *worker {
		if *redisURL == "" {
			logger.Error("--worker needs REDIS_URL or --redis")
			return 2
		}
		jobOpts, closeHooks, err := jobOptions(srv, guard)
		if err != nil {
			logger.Error("job options", "err", err)
			return 1
		}
		defer closeHooks(logger)
		logger.Info("starting job worker", "version", ver)
		if err := jobs.RunWorker(ctx, *redisURL, srv.Runner, jobs.AsynqOptions{Options: jobOpts, Logger: logger}); err != nil {
			logger.Error("worker stopped", "err", err)
			return 1
		}
		logger.Info("worker stopped cleanly")
		return 0
	}
	closeAsync, err := mountJobsAndWebhooks(srv, *redisURL, *apiWorker, guard, logger)
	if err != nil {
		logger.Error("jobs and webhooks", "err", err)
		return 1
	}
	defer closeAsync()

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

// jobOptions builds the webhook registry and deliverer of srv and the job
// options that use them; closeHooks stops the deliverer.
func jobOptions(srv *api.Server, guard webhook.Guard) (opts jobs.Options, closeHooks func(*slog.Logger), err error) {
	observer, err := srv.JobsObserver()
	if err != nil {
		return jobs.Options{}, nil, fmt.Errorf("job metrics: %w", err)
	}
	hooks := webhook.NewRegistry(webhook.RegistryOptions{Guard: guard})
	deliverer := webhook.NewDeliverer(hooks, webhook.DelivererOptions{Guard: guard})
	if err := srv.MountWebhooks(hooks, deliverer); err != nil {
		closeWithin(slog.New(slog.DiscardHandler), "webhook deliverer", deliverer.Close)
		return jobs.Options{}, nil, fmt.Errorf("webhooks: %w", err)
	}
	return jobs.Options{Webhooks: deliverer, Observer: observer},
		func(logger *slog.Logger) { closeWithin(logger, "webhook deliverer", deliverer.Close) }, nil
}

// mountJobsAndWebhooks serves the job and webhook APIs on srv, as
// `backend` and `up` run them: jobs in process, or on Redis (asynq) when
// redisURL is set, worked in this process too when work is true. The
// returned close stops the queue, then the webhook deliverer.
func mountJobsAndWebhooks(srv *api.Server, redisURL string, work bool, guard webhook.Guard, logger *slog.Logger) (func(), error) {
	jobOpts, closeHooks, err := jobOptions(srv, guard)
	if err != nil {
		return nil, err
	}
	var queue jobs.Queue
	if redisURL != "" {
		redisOpt, perr := asynq.ParseRedisURI(redisURL)
		if perr != nil {
			closeHooks(logger)
			return nil, fmt.Errorf("REDIS_URL for jobs: %w", perr)
		}
		var runner jobs.Runner
		if work {
			runner = srv.Runner
		}
		queue, err = jobs.NewAsynq(redisOpt, runner, jobs.AsynqOptions{Options: jobOpts, Logger: logger})
	} else {
		queue, err = jobs.NewMemory(srv.Runner, jobs.MemoryOptions{Options: jobOpts})
	}
	if err != nil {
		closeHooks(logger)
		return nil, fmt.Errorf("job queue: %w", err)
	}
	srv.MountJobs(queue)
	return func() {
		closeWithin(logger, "job queue", queue.Close)
		closeHooks(logger)
	}, nil
}

// closeWithin runs a Close that takes a context, bounded to 10s.
func closeWithin(logger interface{ Warn(string, ...any) }, what string, close func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := close(ctx); err != nil {
		logger.Warn("closing "+what, "err", err)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
