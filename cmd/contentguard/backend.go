package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/backend/api"
	"github.com/contentguard/contentguard/backend/cache"
	"github.com/contentguard/contentguard/backend/host"
	"github.com/contentguard/contentguard/backend/jobs"
	"github.com/contentguard/contentguard/backend/webhook/webhookmetrics"
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

Asynchronous jobs and webhook deliveries run in process by default; with
REDIS_URL they go to Redis (asynq for jobs; endpoints and the delivery
queue too, shared by every replica and worker) and this process also works
them unless --api-worker=false; --worker runs only a job worker and webhook
sender (needs REDIS_URL or --redis), with Prometheus metrics on
--metrics-listen.

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
	hookQueue := fs.Int("webhook-queue-size", 10000, "pending webhook deliveries at most (shared by all processes on one Redis); new jobs get 503 from 90 %")
	hookSenders := fs.Int("webhook-senders", 16, "webhook delivery attempts this process makes at once")
	bodySig := fs.Bool("webhook-body-signature", true, "also send the deprecated body-only X-Webhook-Signature (see docs/jobs-webhooks.md)")
	hookTimeout := fs.Duration("webhook-timeout", 10*time.Second, "limit on one webhook delivery attempt; a sender that dies mid-attempt delays that delivery by twice this (at least timeout + 5s)")
	workerTTL := fs.Duration("worker-ttl", 15*time.Second, "with Redis: a job whose worker has not been heard of for this long is run again by another worker")
	jobConcurrency := fs.Int("job-concurrency", 2, "with Redis: jobs one worker process runs at once")
	metricsListen := fs.String("metrics-listen", envOr("METRICS_LISTEN", ":9091"), "with --worker: serve Prometheus /metrics here (empty: off)")
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
	tracing, flush, err := startTracing(ctx, logger, service, ver)
	if err != nil {
		return 1
	}
	defer flush()

	cfg := api.Config{Service: service, Version: ver, Logger: logger, Tracing: tracing, MaxBodyBytes: *maxBody}
	var rdb *redis.Client // the result cache and webhooks; asynq has its own
	if url := *redisURL; url != "" {
		client, err := cache.NewRedisFromURL(url)
		if err != nil {
			logger.Error("redis cache", "err", err)
			return 1
		}
		defer client.Close()
		rdb = client
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

	hooks, deliverer, err := newWebhooks(srv, rdb, webhookFlags{
		allowPrivate: *allowPrivate, queueSize: *hookQueue, senders: *hookSenders, bodySignature: *bodySig, timeout: *hookTimeout,
	}, logger)
	if err != nil {
		logger.Error("webhooks", "err", err)
		return 1
	}
	defer closeWithin(logger, "webhook deliverer", deliverer.Close)
	observer, err := srv.JobsObserver()
	if err != nil {
		logger.Error("job metrics", "err", err)
		return 1
	}
	jobOpts := jobs.Options{Webhooks: deliverer, Observer: observer}
	asynqOpts := jobs.AsynqOptions{Options: jobOpts, Logger: logger, WorkerTTL: *workerTTL, Concurrency: *jobConcurrency}

	if *worker {
		if *redisURL == "" {
			logger.Error("--worker needs REDIS_URL or --redis")
			return 2
		}
		if err := webhookmetrics.RegisterQueue(srv.Registry(), deliverer, hooks); err != nil {
			logger.Error("webhook metrics", "err", err)
			return 1
		}
		stopMetrics, err := serveMetrics(ctx, *metricsListen, srv.Registry(), logger)
		if err != nil {
			logger.Error("metrics listener", "err", err)
			return 1
		}
		defer stopMetrics()
		logger.Info("starting job worker", "version", ver)
		if err := jobs.RunWorker(ctx, *redisURL, srv.Runner, asynqOpts); err != nil {
			logger.Error("worker stopped", "err", err)
			return 1
		}
		logger.Info("worker stopped cleanly")
		return 0
	}

	var queue jobs.Queue
	if *redisURL != "" {
		redisOpt, err := asynq.ParseRedisURI(*redisURL)
		if err != nil {
			logger.Error("REDIS_URL for jobs", "err", err)
			return 1
		}
		var runner jobs.Runner
		if *apiWorker {
			runner = srv.Runner
		}
		queue, err = jobs.NewAsynq(redisOpt, runner, asynqOpts)
		if err != nil {
			logger.Error("job queue on Redis", "err", err)
			return 1
		}
	} else {
		queue, err = jobs.NewMemory(srv.Runner, jobs.MemoryOptions{Options: jobOpts})
		if err != nil {
			logger.Error("job queue", "err", err)
			return 1
		}
	}
	defer closeWithin(logger, "job queue", queue.Close)
	srv.MountJobs(queue)
	if err := srv.MountWebhooks(hooks, deliverer); err != nil {
		logger.Error("webhooks", "err", err)
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
