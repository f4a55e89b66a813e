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
	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/backend/api"
	"github.com/contentguard/contentguard/backend/cache"
	"github.com/contentguard/contentguard/backend/host"
	"github.com/contentguard/contentguard/backend/jobs"
	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/backend/webhook/webhookmetrics"
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

Asynchronous jobs and webhook deliveries run in process by default; with
REDIS_URL they go to Redis (asynq for jobs; endpoints and the delivery
queue too, shared by every replica and worker) and this process also works
them unless --api-worker=false; --worker runs only a job worker and webhook
sender (needs REDIS_URL or --redis), with Prometheus metrics on
--metrics-listen. The API serves /metrics on its own listener, and also on
--metrics-listen when that is given (or METRICS_LISTEN set): a pod whose
API listens on loopback behind the sidecar is scraped there.

Environment: REDIS_URL (result cache and job queue in Redis), SERVICE_NAME, SERVICE_VERSION,
LOG_LEVEL (debug|info|warn|error), METRICS_LISTEN, WEBHOOK_ALLOW_PRIVATE=true
(--webhook-allow-private), OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_*
variables, or OTLP_ENDPOINT (traces over OTLP/HTTP).

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
	metricsListen := fs.String("metrics-listen", envOr("METRICS_LISTEN", ":9091"), "serve Prometheus /metrics here: with --worker always (empty: off), beside the API only when given or METRICS_LISTEN is set")
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
	apiMetrics := os.Getenv("METRICS_LISTEN") != ""
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			explicitListen = *listen
		case "metrics-listen":
			apiMetrics = true
		}
	})

	logger := telemetry.NewLogger(stderr, telemetry.ParseLevel(*logLevel))
	// go-redis logs through a process-wide logger: into ours, so that
	// every line of the process stays JSON.
	redis.SetLogger(redisLogger{logger})
	service := envOr("SERVICE_NAME", "contentguard-backend")
	ver := envOr("SERVICE_VERSION", buildinfo.Version())
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

	async := asyncOptions{
		redisURL: *redisURL, rdb: rdb, work: *apiWorker, workerTTL: *workerTTL, concurrency: *jobConcurrency,
		hooks: webhookFlags{allowPrivate: *allowPrivate, queueSize: *hookQueue, senders: *hookSenders, bodySignature: *bodySig, timeout: *hookTimeout},
	}
	if *worker {
		if *redisURL == "" {
			logger.Error("--worker needs REDIS_URL or --redis")
			return 2
		}
		return runWorker(ctx, srv, async, *metricsListen, ver, logger)
	}
	closeAsync, err := mountJobsAndWebhooks(srv, async, logger)
	if err != nil {
		logger.Error("jobs and webhooks", "err", err)
		return 1
	}
	defer closeAsync()
	if apiMetrics {
		stopMetrics, err := serveMetrics(ctx, *metricsListen, srv.Registry(), logger)
		if err != nil {
			logger.Error("metrics listener", "err", err)
			return 1
		}
		defer stopMetrics()
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

// runWorker runs this process as a job worker on Redis until ctx ends,
// serving its metrics (deliveries, retries, drops, backlog) on
// metricsListen.
func runWorker(ctx context.Context, srv *api.Server, o asyncOptions, metricsListen, ver string, logger *slog.Logger) int {
	a, err := newAsync(srv, o, logger)
	if err != nil {
		logger.Error("jobs and webhooks", "err", err)
		return 1
	}
	defer a.close(logger)
	if err := webhookmetrics.RegisterQueue(srv.Registry(), a.deliverer, a.hooks); err != nil {
		logger.Error("webhook metrics", "err", err)
		return 1
	}
	stopMetrics, err := serveMetrics(ctx, metricsListen, srv.Registry(), logger)
	if err != nil {
		logger.Error("metrics listener", "err", err)
		return 1
	}
	defer stopMetrics()
	logger.Info("starting job worker", "version", ver)
	if err := jobs.RunWorker(ctx, o.redisURL, srv.Runner, a.asynq); err != nil {
		logger.Error("worker stopped", "err", err)
		return 1
	}
	logger.Info("worker stopped cleanly")
	return 0
}

// asyncOptions say how a backend process runs jobs and delivers webhooks.
type asyncOptions struct {
	redisURL    string        // jobs on asynq there; "" keeps jobs in this process
	rdb         *redis.Client // the webhook store (endpoints, deliveries); nil: this process's memory
	work        bool          // with Redis: also run jobs in this process
	hooks       webhookFlags
	workerTTL   time.Duration // with Redis; 0: asynq adapter's default
	concurrency int           // with Redis; 0: asynq adapter's default
}

// asyncParts are the webhook registry and deliverer of a backend process and
// the job options that deliver through them.
type asyncParts struct {
	hooks     *webhook.Registry
	deliverer *webhook.Deliverer
	asynq     jobs.AsynqOptions
}

func newAsync(srv *api.Server, o asyncOptions, logger *slog.Logger) (asyncParts, error) {
	hooks, deliverer, err := newWebhooks(srv, o.rdb, o.hooks, logger)
	if err != nil {
		return asyncParts{}, fmt.Errorf("webhooks: %w", err)
	}
	observer, err := srv.JobsObserver()
	if err != nil {
		closeWithin(logger, "webhook deliverer", deliverer.Close)
		return asyncParts{}, fmt.Errorf("job metrics: %w", err)
	}
	jobOpts := jobs.Options{Webhooks: deliverer, Observer: observer}
	return asyncParts{
		hooks:     hooks,
		deliverer: deliverer,
		asynq:     jobs.AsynqOptions{Options: jobOpts, Logger: logger, WorkerTTL: o.workerTTL, Concurrency: o.concurrency},
	}, nil
}

func (a asyncParts) close(logger *slog.Logger) {
	closeWithin(logger, "webhook deliverer", a.deliverer.Close)
}

// mountJobsAndWebhooks serves the job and webhook APIs on srv, as
// `contentguard backend` and `up` both do: jobs on asynq when o.redisURL is
// set (run here too when o.work), else in this process. It returns what
// closes them.
func mountJobsAndWebhooks(srv *api.Server, o asyncOptions, logger *slog.Logger) (func(), error) {
	a, err := newAsync(srv, o, logger)
	if err != nil {
		return nil, err
	}
	var queue jobs.Queue
	if o.redisURL != "" {
		redisOpt, perr := asynq.ParseRedisURI(o.redisURL)
		if perr != nil {
			a.close(logger)
			return nil, fmt.Errorf("REDIS_URL for jobs: %w", perr)
		}
		var runner jobs.Runner
		if o.work {
			runner = srv.Runner
		}
		queue, err = jobs.NewAsynq(redisOpt, runner, a.asynq)
	} else {
		queue, err = jobs.NewMemory(srv.Runner, jobs.MemoryOptions{Options: a.asynq.Options})
	}
	if err != nil {
		a.close(logger)
		return nil, fmt.Errorf("job queue: %w", err)
	}
	srv.MountJobs(queue)
	if err := srv.MountWebhooks(a.hooks, a.deliverer); err != nil {
		closeWithin(logger, "job queue", queue.Close)
		a.close(logger)
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	return func() {
		closeWithin(logger, "job queue", queue.Close)
		a.close(logger)
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
