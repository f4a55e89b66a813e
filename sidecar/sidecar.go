// Package sidecar is contentguard's Go data plane: a reverse proxy that asks
// the edge engine about every request and applies its decision — reject
// with a problem document, or forward to the upstream with the normalised
// path, the request ID, verified claims and correct forwarding headers —
// and reports the upstream's outcome back to the engine's circuit breaker.
//
// This package is the Server: it wires the parts below together, keeps the
// policy in force (hot reload on file change or Reload, or a document put
// in force with Apply; atomically, never half-applied), and runs the listeners from start to a graceful drain. It
// neither parses HTTP nor dials the upstream itself:
//
//   - fastpath: its own HTTP/1.1 server for keep-alive API traffic;
//   - nethttp: the net/http server's handler (httputil.ReverseProxy) for
//     everything the fast path hands over, or all traffic without it;
//   - upstream: the client both use — connections, transports, timeouts,
//     and the rule for when the fast path applies;
//   - exchange: what both record and share about one request;
//   - admin: the admin API on its own listener (health, readiness,
//     metrics, breakers, policy).
//
// Other packages plug into it through its public methods alone:
// Options.Local serves in-process handlers (the OAuth2 token endpoint,
// package issuer) behind the same checks; Engine gives the current engine to
// the NGINX auth_request endpoint (package authz) and to Envoy's ext_authz
// and access-log service (package extauthz); Apply takes the policy the
// control plane sends (package xdsclient). See docs/architecture.md.
//
// Native only: this package imports Prometheus, OpenTelemetry and Redis and
// is never run under Yaegi.
package sidecar

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/edge/urlpath"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar/admin"
	"github.com/contentguard/contentguard/sidecar/exchange"
	"github.com/contentguard/contentguard/sidecar/nethttp"
	"github.com/contentguard/contentguard/sidecar/upstream"
	"github.com/contentguard/contentguard/telemetry"
)

// Options configure a Server. Policy is required; every other field has a
// default.
type Options struct {
	// Policy is the initial, validated policy.
	Policy *policy.Policy
	// PolicyFile, when set, is watched for changes and reloaded (see
	// Reload); "" disables reloading from a file.
	PolicyFile string
	// Upstream overrides spec.upstream.url when set (--upstream).
	Upstream string
	// RateStore is a shared rate-limit store (Redis). Default: none for
	// memory policies; for spec.rateLimit.store.type redis, a redisstore
	// on the policy's URL, created by the server.
	RateStore ratelimit.Store
	// Local serves requests for LocalPaths in-process, after the engine has
	// allowed them (authentication, rate limits, CORS apply as to any route;
	// the upstream's circuit breaker does not).
	Local http.Handler
	// LocalPaths are exact normalised paths answered by Local.
	LocalPaths []string
	// InProcessJWKS holds, by issuer, the key sets of token issuers served
	// in this process (Local): JWT providers of those issuers verify with
	// them from the first request instead of fetching their JWKS URL (see
	// auth.Options.InProcessJWKS).
	InProcessJWKS map[string][]byte
	// Logger receives the access log and operational messages; default
	// discards.
	Logger *slog.Logger
	// Registry receives the metrics served on the admin /metrics; default
	// a fresh telemetry.NewRegistry().
	Registry *prometheus.Registry
	// Tracing starts server and client spans and propagates W3C trace
	// context; default a no-op provider that still passes traceparent on.
	Tracing *telemetry.Tracing
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Version is the binary's version, reported by the admin /healthz.
	Version string
	// XDSStatus, when the policy comes from an xDS control plane, reports
	// the subscription on the admin API's GET /admin/xds (the command
	// passes xdsclient.Client.Status).
	XDSStatus func() any

	// Profiling serves net/http/pprof under /debug/pprof/ on the admin
	// handler.
	Profiling bool
	// DisableAccessLog turns off the one JSON line logged per request.
	DisableAccessLog bool
	// AccessLog, when set, receives the access log lines directly (encoded
	// by the sidecar, same JSON as Logger's, a few times cheaper); the
	// Logger's level still decides whether a line is written. Unset, the
	// lines go through Logger.
	AccessLog io.Writer
	// DisableFastPath serves every request through net/http and
	// httputil.ReverseProxy. By default Serve answers keep-alive HTTP/1.1
	// requests on its own loop (package fastpath), to http and https
	// upstreams, whenever Transport is the default; Serve logs which path
	// serves what, and why.
	DisableFastPath bool
	// Transport is the upstream transport. Default: the fast path writes
	// on pooled keep-alive connections of its own; on the net/http path,
	// body-less GET and HEAD requests to plain-http upstreams take a lean
	// synchronous path over the same pool, everything else a tuned
	// http.Transport (see NewTransport). A custom Transport serves every
	// request through net/http: the fast path cannot use one (it takes
	// http.Request values), and Serve logs that it is off and why.
	Transport http.RoundTripper
	// UpstreamTLS configures connections to an https upstream on both
	// paths (trusted roots, a client certificate, the server name);
	// default: the system's roots and the upstream's host name. Only
	// HTTP/1.1 is offered. Ignored with a custom Transport.
	UpstreamTLS *tls.Config
	// WatchInterval is how often PolicyFile is polled; default 1s.
	WatchInterval time.Duration
	// DrainTimeout bounds the graceful drain of in-flight requests on
	// shutdown; default 20s.
	DrainTimeout time.Duration
	// DrainDelay keeps serving (with /readyz already failing) for this long
	// before the listener closes, so load balancers stop sending first;
	// default 0.
	DrainDelay time.Duration
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout of the
	// public server; defaults 10s, 60s, 5m, 120s. WriteTimeout bounds a
	// whole (streamed) response, so it is generous.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

// Server is one running sidecar. It is safe for concurrent use.
type Server struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	tracing *telemetry.Tracing
	state   atomic.Pointer[exchange.Plane] // the policy in force: read once per request

	breakers *breaker.Registry
	local    *ratelimit.Memory
	metrics  *metrics
	client   *upstream.Client
	recorder *exchange.Recorder
	handler  *nethttp.Handler
	redis    *redisStores
	locals   map[string]bool

	reloadMu sync.Mutex // one Reload at a time; guards the two below
	// lastTried is the SHA-256 (hex) of the last policy document a reload
	// tried, from the watcher or Reload, and lastFailed whether it was
	// refused: a refused document is counted once, however often it is
	// tried again, and the watcher does not retry it.
	lastTried  string
	lastFailed bool
	draining   atomic.Bool
	closed     atomic.Bool
	stop       context.CancelFunc
	wg         sync.WaitGroup
}

// ErrNoPolicy is returned by New without Options.Policy.
var ErrNoPolicy = errors.New("sidecar: no policy")

// New builds a server for opts.Policy and, when PolicyFile is set, starts
// watching it until Close or the end of ctx. Call Close when done.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Policy == nil {
		return nil, ErrNoPolicy
	}
	if len(opts.LocalPaths) > 0 && opts.Local == nil {
		return nil, errors.New("sidecar: LocalPaths without a Local handler")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = telemetry.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WatchInterval <= 0 {
		opts.WatchInterval = time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 20 * time.Second
	}
	tracing := opts.Tracing
	if tracing == nil {
		tracing = &telemetry.Tracing{Provider: tracenoop.NewTracerProvider(), Propagator: propagation.TraceContext{}}
	}
	m, err := newMetrics(opts.Registry, opts.Logger)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		now:     opts.Now,
		tracing: tracing,
		metrics: m,
		client:  upstream.NewClient(opts.Transport, opts.UpstreamTLS),
		redis:   &redisStores{},
		locals:  map[string]bool{},
	}
	for _, p := range opts.LocalPaths {
		s.locals[p] = true
	}
	// Stores that outlive policies: budgets and breaker state survive a
	// reload because every engine shares these two.
	s.local = ratelimit.NewMemory(ratelimit.MemoryOptions{SweepInterval: ratelimit.DefaultSweepInterval, Now: opts.Now})
	s.breakers = edge.NewBreakers(opts.Policy, opts.Now, m)
	pl, err := s.build(ctx, opts.Policy)
	if err != nil {
		s.local.Close()
		s.redis.close()
		return nil, err
	}
	s.state.Store(pl)
	m.policyLoaded(pl)
	s.recorder = exchange.NewRecorder(exchange.RecorderOptions{
		Tracing:          tracing,
		Metrics:          m.http,
		Logger:           s.log,
		AccessLog:        opts.AccessLog,
		DisableAccessLog: opts.DisableAccessLog,
	})
	s.handler = nethttp.New(nethttp.Config{
		Sidecar:   view{s},
		Local:     opts.Local,
		Transport: s.client.RoundTripper(),
		Recorder:  s.recorder,
		Logger:    s.log,
	})

	wctx, stop := context.WithCancel(ctx)
	s.stop = stop
	if opts.PolicyFile != "" {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.watch(wctx)
		}()
	}
	return s, nil
}

// build makes the plane for p: the engine, sharing the server's stores and
// breakers, and the upstream target. It has no side effects on failure.
func (s *Server) build(ctx context.Context, p *policy.Policy) (*exchange.Plane, error) {
	eff := *p // the engine names the breaker after the upstream it really uses
	if s.opts.Upstream != "" {
		eff.Spec.Upstream.URL = s.opts.Upstream
	}
	target, err := upstream.ParseTarget(eff.Spec.Upstream.URL)
	if err != nil {
		return nil, err
	}
	rates := s.opts.RateStore
	if rates == nil && eff.Spec.RateLimit.Store.Type == "redis" {
		if rates, err = s.redis.get(eff.Spec.RateLimit.Store.URL); err != nil {
			return nil, err
		}
	}
	eng, err := edge.New(ctx, &eff, edge.Options{
		Now:            s.now,
		RateStore:      rates,
		LocalRateStore: s.local,
		Breakers:       s.breakers,
		Observer:       s.metrics,
		Auth:           auth.Options{InProcessJWKS: s.opts.InProcessJWKS, Logf: s.authWarning},
	})
	if err != nil {
		return nil, fmt.Errorf("sidecar: policy %s: %w", p.Source, err)
	}
	s.metrics.BreakerSeen(eng.Breakers().Get(target.Name))
	return &exchange.Plane{
		Engine:   eng,
		Policy:   p,
		LoadedAt: s.now(),
		Target:   target,
		Trusted:  eff.Spec.ClientIP.TrustedProxies,
		MaxBody:  eff.Spec.Limits.MaxBodyBytes,
		Names:    exchange.NewHeaderNames(&eff),
	}, nil
}

// authWarning logs what the JWT verifier warns about (a JWKS over plain
// http, keys given in process); failed key fetches come through the
// Observer instead (metrics.KeysFetched).
func (s *Server) authWarning(format string, args ...any) {
	s.log.Warn(fmt.Sprintf(format, args...))
}

// isLocal reports whether a request for path (as sent) is for an in-process
// handler (Options.LocalPaths); it normalises only when there are any.
func (s *Server) isLocal(path string) bool {
	if len(s.locals) == 0 {
		return false
	}
	np, ok := urlpath.Normalize(path)
	return ok && s.locals[np]
}

// Engine returns the engine in force (for sidecar/authz). It may be replaced
// by a reload at any time: read it once per request.
func (s *Server) Engine() *edge.Engine { return s.state.Load().Engine }

// Policy returns the policy in force.
func (s *Server) Policy() *policy.Policy { return s.state.Load().Policy }

// Reload reads PolicyFile again, validates it, builds a new engine that
// shares the rate-limit stores and circuit breakers, and swaps it in
// atomically. On any error the policy in force stays, the error (with
// file:line:col for policy errors) is logged and returned, and
// policy_reload_errors_total counts it.
func (s *Server) Reload() error {
	if s.opts.PolicyFile == "" {
		return errors.New("sidecar: reload: no policy file")
	}
	data, err := policyfile.Read(s.opts.PolicyFile)
	if err != nil {
		return s.reloadFailed(err)
	}
	return s.reloadFrom(data)
}

// reloadFrom applies the policy document data read from PolicyFile.
func (s *Server) reloadFrom(data []byte) error {
	return s.apply(s.opts.PolicyFile, data, func() (*policy.Policy, error) { return policyfile.ParseFile(s.opts.PolicyFile, data) })
}

// Apply puts the policy document data in force, as a reload of the policy
// file does: decoded, validated and built into a new engine that shares
// the rate-limit stores and breakers, swapped in atomically; on any error
// the policy in force stays and the error (positioned, for policy errors)
// is returned, logged and counted once per document. source names the
// document in errors and on /admin/policy (an xDS resource, say); relative
// file references in it resolve against baseDir. The sidecar's xDS client
// applies what the control plane sends through it.
func (s *Server) Apply(source, baseDir string, data []byte) error {
	return s.apply(source, data, func() (*policy.Policy, error) {
		p, err := policyfile.Parse(source, data)
		if err != nil {
			return nil, err
		}
		p.BaseDir = baseDir
		return p, nil
	})
}

// apply puts the policy that parse makes of data in force.
func (s *Server) apply(source string, data []byte, parse func() (*policy.Policy, error)) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.closed.Load() {
		return errors.New("sidecar: reload: server closed")
	}
	sum := documentHash(data)
	counted := sum == s.lastTried && s.lastFailed
	s.lastTried, s.lastFailed = sum, true
	p, err := parse()
	if err != nil {
		return s.reloadRefused(source, err, counted)
	}
	pl, err := s.build(context.Background(), p)
	if err != nil {
		return s.reloadRefused(source, err, counted)
	}
	s.lastFailed = false
	old := s.state.Swap(pl)
	// The breakers outlive policies (their state must survive a reload);
	// their thresholds follow the policy in force.
	s.breakers.Reconfigure(edge.BreakerSettings(p, s.now, s.metrics))
	// Requests still running on the old engine keep working: a closed
	// engine only stops its background JWKS refresh.
	old.Engine.Close()
	s.metrics.reloaded(pl, old)
	s.log.Info("policy reloaded", "policy", p.Metadata.Name, "version", p.Metadata.Version, "hash", p.Hash, "source", p.Source)
	return nil
}

func (s *Server) reloadFailed(err error) error {
	return s.reloadRefused(s.opts.PolicyFile, err, false)
}

// reloadRefused logs a refused reload and counts it, unless the same
// document was refused (and counted) before.
func (s *Server) reloadRefused(source string, err error, counted bool) error {
	if !counted {
		s.metrics.ReloadFailed()
	}
	s.log.Error("policy reload failed; keeping the policy in force", "err", err.Error(), "policy", source)
	return err
}

// documentHash is the SHA-256 of a policy document, hex: policy.Hash.
func documentHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Handler returns the public data-plane handler.
func (s *Server) Handler() http.Handler { return s.handler }

// AdminHandler returns the admin API (see package admin). Serve it on a
// private listener only (Serve never puts it on the public one).
func (s *Server) AdminHandler() http.Handler {
	return admin.Handler(admin.Config{
		Sidecar:   view{s},
		Version:   s.opts.Version,
		Registry:  s.opts.Registry,
		Breakers:  s.breakers,
		XDS:       s.opts.XDSStatus,
		Profiling: s.opts.Profiling,
	})
}

// view is the Server as its parts see it (fastpath.Sidecar,
// nethttp.Sidecar, admin.Sidecar): the policy in force and the server's
// state, nothing else.
type view struct{ s *Server }

func (v view) Plane() *exchange.Plane { return v.s.state.Load() }

func (v view) Local(path string) bool { return v.s.isLocal(path) }

func (v view) Draining() bool { return v.s.draining.Load() }

func (v view) Closed() bool { return v.s.closed.Load() }

// Close stops the policy watcher and releases the engine and stores. It
// does not stop listeners started by Serve (cancel Serve's context). It is
// safe to call more than once.
func (s *Server) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.stop()
	s.wg.Wait()
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.state.Load().Engine.Close()
	s.local.Close()
	s.client.CloseIdleConnections()
	return s.redis.close()
}

// NewTransport returns the upstream transport the sidecar uses by default
// for what its lean round-tripper does not take (upstream.NewTransport).
func NewTransport() *http.Transport { return upstream.NewTransport() }
