// Package sidecar is contentguard's Go data plane: a reverse proxy
// (net/http/httputil) that asks the edge engine about every request and
// applies its decision — reject with a problem document, or forward to the
// upstream with the normalised path, the request ID, verified claims and
// correct forwarding headers — and reports the upstream's outcome back to the
// engine's circuit breaker.
//
// Around the proxy it keeps the policy fresh (hot reload on file change or
// Reload, atomically, never half-applied), exposes an admin API on its own
// listener (health, readiness, metrics, breakers, policy), and shuts down
// gracefully. Other packages plug into it: Options.Local serves in-process
// handlers (the OAuth2 token endpoint) behind the same checks, and Engine
// gives the NGINX auth_request endpoint the current engine.
//
// Native only: this package imports Prometheus, OpenTelemetry and Redis and
// is never run under Yaegi.
package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
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

	// DisableAccessLog turns off the one JSON line logged per request.
	DisableAccessLog bool
	// Transport is the upstream transport; default a tuned, shared
	// http.Transport (see NewTransport).
	Transport http.RoundTripper
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
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	state atomic.Pointer[plane] // the policy in force: read once per request

	breakers *breaker.Registry
	local    *ratelimit.Memory

	reloadMu sync.Mutex // one Reload at a time
	draining atomic.Bool
	closed   atomic.Bool
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

// plane is everything that changes with a policy: the engine and what the
// proxy derives from the same policy. A request reads it once and uses only
// it, so it is judged by exactly one policy.
type plane struct {
	engine   *edge.Engine
	policy   *policy.Policy
	loadedAt time.Time
}

// ErrNoPolicy is returned by New without Options.Policy.
var ErrNoPolicy = errors.New("sidecar: no policy")

// New builds a server for opts.Policy and, when PolicyFile is set, starts
// watching it until Close (or ctx ends).
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Policy == nil {
		return nil, ErrNoPolicy
	}
	return nil, fmt.Errorf("sidecar: not implemented yet")
}

// Engine returns the engine in force (for sidecar/authz). It may be replaced
// by a reload at any time: read it once per request.
func (s *Server) Engine() *edge.Engine { return s.state.Load().engine }

// Policy returns the policy in force.
func (s *Server) Policy() *policy.Policy { return s.state.Load().policy }

// Reload reads PolicyFile again, validates it, builds a new engine that
// shares the rate-limit stores and circuit breakers, and swaps it in
// atomically. On any error the policy in force stays, and the error (with
// file:line:col for policy errors) is returned.
func (s *Server) Reload() error {
	if s.opts.PolicyFile == "" {
		return errors.New("sidecar: reload: no policy file")
	}
	p, err := policyfile.Load(s.opts.PolicyFile)
	if err != nil {
		return fmt.Errorf("sidecar: reload %s: %w", s.opts.PolicyFile, err)
	}
	_ = p
	return fmt.Errorf("sidecar: not implemented yet")
}

// Handler returns the public data-plane handler.
func (s *Server) Handler() http.Handler { return http.NotFoundHandler() }

// AdminHandler returns the admin API: /healthz, /readyz, /metrics,
// GET /admin/breakers, POST /admin/breakers/reset[?name=X],
// GET /admin/policy. Serve it on a private listener only.
func (s *Server) AdminHandler() http.Handler { return http.NotFoundHandler() }

// Close stops the policy watcher and releases the engine and stores. It
// does not stop listeners started by Serve (cancel Serve's context).
func (s *Server) Close() error { return nil }
