// Package api is the HTTP face of the contentguard text-analysis backend: the
// original service's routes (at / and /api/v1) with its success envelope,
// RFC 9457 problems for every error, a result cache, metrics, traces, the
// OpenAPI document and interactive docs. It knows nothing of auth or rate
// limits: the edge in front of it enforces those.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/contentguard/contentguard/backend/cache"
	"github.com/contentguard/contentguard/backend/jobs"
	"github.com/contentguard/contentguard/backend/webhook"
	"github.com/contentguard/contentguard/internal/neterr"
	"github.com/contentguard/contentguard/telemetry"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes    = 1 << 20
	DefaultCacheTTL        = 300 * time.Second
	DefaultCacheMaxEntries = 10_000
)

// Config is everything a Server needs; zero fields take defaults.
type Config struct {
	Service string // service name in /health; default "contentguard-backend"
	Version string // reported by /health and the OpenAPI document
	Logger  *slog.Logger
	// Registry receives the backend's metrics and is served on /metrics;
	// default a fresh telemetry.NewRegistry().
	Registry *prometheus.Registry
	// Tracing provides the tracer and propagator; default no-op.
	Tracing *telemetry.Tracing
	// Cache stores results; default an in-memory LRU
	// (DefaultCacheMaxEntries, DefaultCacheTTL).
	Cache     cache.Cache
	CacheKind string // "memory" or "redis", reported by /health
	// MaxBodyBytes bounds a request body (413 beyond); default 1 MiB.
	MaxBodyBytes int64
	// HealthChecks are probed (1 s timeout each) by GET /health; a failing
	// one turns status into "degraded" (still 200: the process is alive).
	HealthChecks map[string]func(context.Context) error
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Server is the backend's HTTP API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	cache   cache.Cache
	tracer  trace.Tracer
	metrics *telemetry.Metrics
	resp    responder
	openapi openAPICache
	started time.Time

	analysisRequests *prometheus.CounterVec
	cacheHits        prometheus.Counter
	cacheMisses      prometheus.Counter

	deliverer *webhook.Deliverer // nil: no webhook events for synchronous routes
	hookObsMu sync.Mutex
	hookObs   webhook.Observer // the webhook delivery counters, once registered

	mux      *http.ServeMux
	patterns []string // every registered pattern, for the OpenAPI check
}

// New builds a Server and registers its metrics.
func New(cfg Config) (*Server, error) {
	if cfg.Service == "" {
		cfg.Service = "contentguard-backend"
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = telemetry.NewRegistry()
	}
	if cfg.Tracing == nil {
		t, err := telemetry.SetupTracing(context.Background(), cfg.Service, cfg.Version)
		if err != nil {
			return nil, err
		}
		cfg.Tracing = t
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Cache == nil {
		cfg.Cache = cache.NewMemory(DefaultCacheMaxEntries, DefaultCacheTTL)
		cfg.CacheKind = "memory"
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	m, err := telemetry.NewMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, now: cfg.Now, cache: cfg.Cache, metrics: m,
		tracer:  cfg.Tracing.Tracer("github.com/contentguard/contentguard/backend/api"),
		resp:    responder{log: cfg.Logger, now: cfg.Now},
		started: cfg.Now(),
		analysisRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: telemetry.MetricAnalysisRequests, Help: "Analyses requested, by kind (cache hits included).",
		}, []string{"kind"}),
		cacheHits:   prometheus.NewCounter(prometheus.CounterOpts{Name: telemetry.MetricCacheHits, Help: "Result cache hits."}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{Name: telemetry.MetricCacheMisses, Help: "Result cache misses."}),
		mux:         http.NewServeMux(),
	}
	for _, c := range []prometheus.Collector{s.analysisRequests, s.cacheHits, s.cacheMisses} {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
	}
	for _, k := range []string{KindAnalyze, KindSimilarity, KindQuality, KindBatch, KindDedup} {
		s.analysisRequests.WithLabelValues(k) // export zeros so dashboards see every kind
	}
	s.routes()
	return s, nil
}

// Responder returns the envelope/problem writer, for handlers mounted from
// other packages so all answers share one shape (webhook.Responder is the
// same interface).
func (s *Server) Responder() jobs.Responder { return s.resp }

// Registry is where the server's metrics live; other packages register theirs here.
func (s *Server) Registry() *prometheus.Registry { return s.cfg.Registry }

// Handle mounts h at pattern behind the same middleware, route labelling,
// body limit and recovery as the built-in routes. Call it before serving.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.handleLimit(pattern, h, s.cfg.MaxBodyBytes)
}

// handleLimit is Handle with a body limit of its own (413 beyond).
func (s *Server) handleLimit(pattern string, h http.Handler, limit int64) {
	s.patterns = append(s.patterns, pattern)
	s.mux.Handle(pattern, telemetry.Route(pattern, s.limitBody(h, limit)))
}

// op adapts an operation to a handler: read the bounded body, run, answer.
func (s *Server) op(kind string, run func(ctx context.Context, body []byte) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(w, r, s.cfg.MaxBodyBytes)
		if err == nil {
			var data any
			data, err = run(r.Context(), body)
			if err == nil {
				s.resp.Data(w, r, http.StatusOK, data)
				s.publish(r.Context(), kind, data)
				return
			}
		}
		s.resp.writeProblem(w, r, problemOf(err))
	})
}

func (s *Server) routes() {
	for _, prefix := range []string{"", "/api/v1"} {
		s.Handle("POST "+prefix+"/analyze", s.op(KindAnalyze, s.analyze))
		s.Handle("POST "+prefix+"/similarity", s.op(KindSimilarity, s.similarity))
		s.Handle("POST "+prefix+"/quality", s.op(KindQuality, s.quality))
		s.Handle("POST "+prefix+"/batch/process", s.op(KindBatch, func(ctx context.Context, b []byte) (any, error) { return s.batch(ctx, b, nil) }))
		s.Handle("GET "+prefix+"/health", http.HandlerFunc(s.health))
	}
	s.Handle("POST /api/v1/dedup", s.op(KindDedup, func(ctx context.Context, b []byte) (any, error) { return s.dedup(ctx, b, nil) }))
	s.Handle("GET /metrics", s.metrics.Handler())
	s.Handle("GET /openapi.json", http.HandlerFunc(s.openAPI))
	s.Handle("GET /docs", http.HandlerFunc(s.docsPage))
	s.Handle("GET /docs/{asset}", http.HandlerFunc(s.docsAsset))
	s.Handle("GET /{$}", http.HandlerFunc(s.root))
	// Everything else: 404 or 405 as problem+json (not the mux's text/plain).
	s.mux.Handle("/", http.HandlerFunc(s.notFound))
}

// Handler is the complete HTTP handler, outermost middleware first:
// request ID → trace span → metrics → access log → recover → routes (each
// route with its body limit).
func (s *Server) Handler() http.Handler {
	var h http.Handler = s.mux
	h = s.recoverer(h)
	h = telemetry.AccessLog(s.log)(h)
	h = s.metrics.Middleware(h)
	h = s.cfg.Tracing.Middleware(h)
	return telemetry.RequestID(h)
}

func (s *Server) limitBody(next http.Handler, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			s.resp.writeProblem(w, r, &Problem{Status: http.StatusRequestEntityTooLarge,
				Detail: fmt.Sprintf("request body of %d bytes exceeds %d bytes", r.ContentLength, limit)})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a logged 500 problem instead of a dropped
// connection; http.ErrAbortHandler keeps its meaning.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "panic serving request", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			s.resp.writeProblem(w, r, &Problem{Status: http.StatusInternalServerError, Detail: "internal error"})
		}()
		next.ServeHTTP(w, r)
	})
}

var probeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range probeMethods {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", allowHeader(allow))
		s.resp.writeProblem(w, r, &Problem{Status: http.StatusMethodNotAllowed,
			Detail: fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allowHeader(allow))})
		return
	}
	s.resp.writeProblem(w, r, &Problem{Status: http.StatusNotFound, Detail: fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)})
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	status, checks := "healthy", map[string]string{}
	for name, check := range s.cfg.HealthChecks {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		err := check(ctx)
		cancel()
		if err != nil {
			// /health is public: the kind of failure, not the address of
			// the Redis that failed it.
			s.log.WarnContext(r.Context(), "health check failed", "check", name, "err", err)
			status, checks[name] = "degraded", "error: "+neterr.Describe(err)
			continue
		}
		checks[name] = "ok"
	}
	s.resp.Data(w, r, http.StatusOK, map[string]any{
		"status":         status,
		"checks":         checks,
		"service":        s.cfg.Service,
		"version":        s.cfg.Version,
		"uptime_seconds": s.now().Sub(s.started).Seconds(),
		"cache":          s.cfg.CacheKind,
		"timestamp":      s.now().UTC().Format(time.RFC3339Nano),
	})
}

func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	s.resp.Data(w, r, http.StatusOK, map[string]any{
		"service": s.cfg.Service, "version": s.cfg.Version,
		"docs": "/docs", "openapi": "/openapi.json", "health": "/health",
	})
}

func newID() string { return telemetry.NewRequestID() }
