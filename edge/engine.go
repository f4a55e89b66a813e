// Package edge is the gateway-neutral policy engine of contentguard: given a
// policy and a request, Check decides — reject with a problem, or forward with
// which headers — and Observe feeds the upstream's outcome back into the
// circuit breaker. Every data plane (Kong, Traefik, the sidecar, NGINX
// auth_request, Envoy via xDS) is a thin adapter over this one decision, so
// that the same policy file gives the same answer everywhere.
//
// The concerns live in small packages beside this one (auth, ratelimit,
// breaker, requestid, clientip, urlpath, cors, secheaders, problem); this
// package composes them in a fixed order:
//
//	request ID → header and body limits, ambiguous header names → path
//	normalisation and parameters → CORS preflight → client IP → route and
//	upgrade → authentication and scopes → rate limit → breaker
//
// The engine and everything it imports run under the Yaegi interpreter (the
// Traefik plugin), so it sticks to the standard library and golang-jwt, and
// reports reasons as values rather than wrapped errors. Redis, Prometheus and
// OpenTelemetry come in through Options.
package edge

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/edge/clientip"
	"github.com/contentguard/contentguard/edge/cors"
	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/edge/secheaders"
	"github.com/contentguard/contentguard/internal/keyfile"
	"github.com/contentguard/contentguard/internal/requestid"
	"github.com/contentguard/contentguard/policy"
)

// Observer receives what the engine decides, for metrics and logs. Methods
// are called synchronously on the request path and must be cheap. Decisions
// are passed by value so that observing one does not move it to the heap.
type Observer interface {
	Decided(d Decision)
	Upstream(d Decision, o Outcome)
	BreakerChanged(upstream string, from, to breaker.State)
	RateLimitFallback(err error)
}

// KeysObserver is an Observer that also hears about key fetches: when the
// engine's Observer implements it, KeysFetched is called after every fetch
// of a JWT provider's JWKS URL, with err nil on success (a data plane logs
// the failures at WARN with the URL and counts them). An Observer without it
// is not told.
type KeysObserver interface {
	KeysFetched(provider, url string, err error)
}

// Options are the parts of an engine that do not come from the policy.
type Options struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
	// RateStore replaces the policy's rate-limit store (the sidecar passes a
	// Redis store here; the engine itself never imports Redis). The engine
	// wraps it with the policy's onError behaviour.
	RateStore ratelimit.Store
	// LocalRateStore keeps per-process buckets: the fallback for RateStore
	// and the store for memory policies. Passing the previous engine's store
	// keeps budgets across policy reloads. Default: a new memory store that
	// sweeps idle keys every ratelimit.DefaultSweepInterval.
	LocalRateStore *ratelimit.Memory
	// Breakers keeps breaker state across policy reloads. Default: new.
	Breakers *breaker.Registry
	// Verifier options (HTTP client for JWKS URLs, cache size, the key sets
	// of issuers signing in this process). Auth.OnFetch defaults to the
	// Observer's KeysFetched.
	Auth auth.Options
	// Observer, if set, sees every decision.
	Observer Observer
	// LookupEnv resolves secret: {env: NAME}; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Engine applies one policy. It is safe for concurrent use; a new policy
// means a new Engine (swap it atomically), sharing stores through Options.
type Engine struct {
	policy   *policy.Policy
	now      func() time.Time
	observer Observer

	ids          *requestid.V7Generator // nil: UUIDv4s
	idHeader     string                 // as written in the policy, for responses
	idKey        string                 // canonical form, for lookups
	alsoIDs      []string
	trustID      bool
	clientIP     *clientip.Resolver
	cors         *cors.Policy
	security     [][2]string
	securityTLS  [][2]string
	tlsMatters   bool // security and securityTLS differ
	rateHeaders  string
	verifier     *auth.Verifier
	keysOptional map[string]bool // providers that may be ready without keys
	keyring      *auth.Keyring
	apiKeyHeader string // canonical form
	// apiKeySpellings are the canonical forms of apiKeyHeader with '_'
	// for some of its '-' (see underscoreSpellings): the same field to a
	// CGI-style upstream.
	apiKeySpellings []string
	strip           []string
	forward         map[string][]policy.ClaimHeader // provider name -> claims to forward
	keyForward      []policy.ClaimHeader            // what API-key identities forward: sub and scopes
	routes          []route
	shared          ratelimit.Store // the store of a policy that shares one (Redis), else nil
	local           *ratelimit.Memory
	ownLocal        bool
	breakers        *breaker.Registry
	upstream        string
	timeout         time.Duration
	failOn          policy.FailOn
	maxBody         int64
	maxHeader       int64
	params          bool     // spec.paths.allowParameters
	fold            bool     // spec.paths.caseInsensitive
	stripUpgrade    []string // strip plus the h2c upgrade's fields

	// Prepared once for every decision (see Decision.names and strips).
	names         map[string]string
	strips        *stripSet
	stripsUpgrade *stripSet
	// keyIdentities are the identities of the API keys, by id.
	keyIdentities map[string]auth.Identity
}

// New builds an engine for p. It reads the key material the policy names
// (JWKS files, secrets) relative to p.BaseDir, and fails without side effects
// if anything is missing or invalid.
func New(ctx context.Context, p *policy.Policy, opts Options) (*Engine, error) {
	if p == nil {
		return nil, fmt.Errorf("edge: nil policy")
	}
	s := &p.Spec
	e := &Engine{
		policy:      p,
		now:         opts.Now,
		observer:    opts.Observer,
		idHeader:    s.RequestID.Header,
		idKey:       http.CanonicalHeaderKey(s.RequestID.Header),
		alsoIDs:     s.RequestID.AlsoHeaders,
		trustID:     s.RequestID.TrustIncoming,
		rateHeaders: s.RateLimit.Headers,
		upstream:    upstreamName(s.Upstream.URL),
		timeout:     s.Upstream.Timeout,
		failOn:      s.CircuitBreaker.FailOn,
		maxBody:     s.Limits.MaxBodyBytes,
		maxHeader:   s.Limits.MaxHeaderBytes,
		params:      s.Paths.AllowParameters,
		fold:        s.Paths.CaseInsensitive,
		forward:     map[string][]policy.ClaimHeader{},
	}
	if e.now == nil {
		e.now = time.Now
	}
	if _, err := requestid.ForFormat(s.RequestID.Format); err != nil {
		return nil, fmt.Errorf("edge: request IDs: %v", err)
	}
	if s.RequestID.Format != "uuidv4" {
		e.ids = &requestid.V7Generator{}
	}
	var err error
	if e.clientIP, err = clientip.New(s.ClientIP.TrustedProxies, s.ClientIP.Headers); err != nil {
		return nil, fmt.Errorf("edge: client IP: %v", err)
	}
	if s.CORS != nil {
		e.cors, err = cors.New(cors.Config{
			AllowOrigins:     s.CORS.AllowOrigins,
			AllowMethods:     s.CORS.AllowMethods,
			AllowHeaders:     s.CORS.AllowHeaders,
			ExposeHeaders:    s.CORS.ExposeHeaders,
			AllowCredentials: s.CORS.AllowCredentials,
			MaxAge:           s.CORS.MaxAge,
		})
		if err != nil {
			return nil, fmt.Errorf("edge: CORS: %v", err)
		}
	}
	switch {
	case s.SecurityHeaders.Custom != nil:
		if e.security, err = secheaders.Custom(s.SecurityHeaders.Custom); err != nil {
			return nil, fmt.Errorf("edge: security headers: %v", err)
		}
		e.securityTLS = e.security
	case s.SecurityHeaders.Preset == "strict":
		e.security = secheaders.Strict(false)
		e.securityTLS = secheaders.Strict(true)
	}
	e.tlsMatters = !sameHeaders(e.security, e.securityTLS)
	if err := e.buildAuth(ctx, p, opts); err != nil {
		return nil, err
	}
	if e.routes, err = compileRoutes(s.Routes, e.fold); err != nil {
		e.Close()
		return nil, err
	}
	// A fresh slice: strip is shared by every decision and never grows.
	e.stripUpgrade = append(append(make([]string, 0, len(e.strip)+3), e.strip...), h2cFields...)
	ids := append([]string{e.idHeader}, e.alsoIDs...)
	e.strips = newStripSet(e.strip, ids)
	e.stripsUpgrade = newStripSet(e.stripUpgrade, ids)
	e.names = headerNames(e, ids)
	e.local = opts.LocalRateStore
	if e.local == nil {
		e.local = ratelimit.NewMemory(ratelimit.MemoryOptions{SweepInterval: ratelimit.DefaultSweepInterval, Now: opts.Now})
		e.ownLocal = true
	}
	if opts.RateStore != nil {
		onFallback := func(err error) {
			if e.observer != nil {
				e.observer.RateLimitFallback(err)
			}
		}
		e.shared = ratelimit.WithFallback(opts.RateStore, e.local, ratelimit.OnError(s.RateLimit.Store.OnError), onFallback)
	}
	e.breakers = opts.Breakers
	if e.breakers == nil {
		e.breakers = NewBreakers(p, opts.Now, opts.Observer)
	}
	return e, nil
}

// NewBreakers makes the breaker registry a policy asks for. Data planes that
// reload policies create it once and pass it in Options.Breakers.
func NewBreakers(p *policy.Policy, now func() time.Time, obs Observer) *breaker.Registry {
	return breaker.NewRegistry(BreakerSettings(p, now, obs))
}

// BreakerSettings are p's circuit-breaker settings, for NewBreakers and for
// breaker.Registry.Reconfigure when a data plane reloads the policy.
func BreakerSettings(p *policy.Policy, now func() time.Time, obs Observer) breaker.Settings {
	cb := p.Spec.CircuitBreaker
	set := breaker.Settings{
		ConsecutiveFailures: cb.ConsecutiveFailures,
		OpenFor:             cb.OpenFor,
		HalfOpenRequests:    cb.HalfOpenRequests,
		Now:                 now,
	}
	if cb.FailureRatio != nil {
		set.FailureRatio = cb.FailureRatio.Ratio
		set.MinRequests = cb.FailureRatio.MinRequests
		set.Window = cb.FailureRatio.Window
	}
	if obs != nil {
		set.OnStateChange = func(name string, from, to breaker.State) { obs.BreakerChanged(name, from, to) }
	}
	return set
}

func (e *Engine) buildAuth(ctx context.Context, p *policy.Policy, opts Options) error {
	s := &p.Spec
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if len(s.Auth.JWT.Providers) > 0 {
		providers := make([]auth.Provider, 0, len(s.Auth.JWT.Providers))
		for i := 0; i < len(s.Auth.JWT.Providers); i++ {
			pp := s.Auth.JWT.Providers[i]
			ap := auth.Provider{
				Name:       pp.Name,
				Issuer:     pp.Issuer,
				Audiences:  pp.Audiences,
				Algorithms: pp.Algorithms,
				ClockSkew:  pp.ClockSkew,
				ScopeClaim: pp.ScopeClaim,
			}
			if pp.JWKS != nil {
				ap.JWKSURL = pp.JWKS.URL
				ap.JWKSInline = pp.JWKS.Inline
				ap.Refresh = pp.JWKS.Refresh
				if pp.JWKS.File != "" {
					ap.JWKSFile = keyfile.Resolve(p.BaseDir, pp.JWKS.File)
				}
				if pp.JWKS.ReadyWithoutKeys {
					if e.keysOptional == nil {
						e.keysOptional = map[string]bool{}
					}
					e.keysOptional[pp.Name] = true
				}
			}
			if pp.Secret != nil {
				secret, err := readSecret(p.BaseDir, pp.Secret, lookup)
				if err != nil {
					return fmt.Errorf("edge: provider %s: %v", pp.Name, err)
				}
				ap.Secret = secret
			}
			providers = append(providers, ap)
			e.forward[pp.Name] = pp.ForwardClaims
			for j := 0; j < len(pp.ForwardClaims); j++ {
				fc := pp.ForwardClaims[j]
				e.strip = appendUnique(e.strip, fc.Header)
				// API keys have no claims: they forward their id as the
				// subject and their scopes, under the providers' headers.
				if fc.Claim == "sub" || fc.Claim == "scope" || fc.Claim == "scp" {
					e.keyForward = append(e.keyForward, fc)
				}
			}
		}
		ao := opts.Auth
		if ao.Now == nil {
			ao.Now = opts.Now
		}
		// (Yaegi panics asserting on a nil interface: test it first.)
		if opts.Observer != nil && ao.OnFetch == nil {
			if ko, ok := opts.Observer.(KeysObserver); ok {
				ao.OnFetch = ko.KeysFetched
			}
		}
		v, err := auth.NewVerifier(ctx, providers, ao)
		if err != nil {
			return fmt.Errorf("edge: JWT: %v", err)
		}
		e.verifier = v
	}
	if s.Auth.APIKeys != nil {
		keys := make([]auth.APIKey, 0, len(s.Auth.APIKeys.Keys))
		for i := 0; i < len(s.Auth.APIKeys.Keys); i++ {
			k := s.Auth.APIKeys.Keys[i]
			keys = append(keys, auth.APIKey{ID: k.ID, SHA256: k.SHA256, Scopes: k.Scopes})
		}
		e.keyring = auth.NewKeyring(keys)
		e.apiKeyHeader = http.CanonicalHeaderKey(s.Auth.APIKeys.Header)
		e.apiKeySpellings = underscoreSpellings(e.apiKeyHeader)
		// API keys have no claims: they forward their id as the subject and
		// their scopes.
		e.keyIdentities = make(map[string]auth.Identity, len(keys))
		for i := 0; i < len(keys); i++ {
			e.keyIdentities[keys[i].ID] = auth.Identity{Provider: "apiKey", Subject: keys[i].ID,
				Scopes: keys[i].Scopes, ScopeText: strings.Join(keys[i].Scopes, " ")}
		}
	}
	return nil
}

func readSecret(base string, s *policy.SecretRef, lookup func(string) (string, bool)) ([]byte, error) {
	switch {
	case s.Value != "":
		return []byte(s.Value), nil
	case s.Env != "":
		v, ok := lookup(s.Env)
		if !ok || v == "" {
			return nil, fmt.Errorf("secret: environment variable %s is not set", s.Env)
		}
		return []byte(v), nil
	default:
		b, err := keyfile.ReadSecret(keyfile.Resolve(base, s.File))
		if err != nil {
			return nil, fmt.Errorf("secret: %v", err)
		}
		return b, nil
	}
}

// headerNames maps every header name the engine writes to its canonical
// form (see Decision.names).
func headerNames(e *Engine, ids []string) map[string]string {
	var names []string
	names = append(names, ids...)
	names = append(names, e.strip...)
	names = append(names, h2cFields...)
	for _, list := range [][][2]string{e.security, e.securityTLS, ratelimit.Headers(ratelimit.StyleBoth, ratelimit.Result{})} {
		for _, kv := range list {
			names = append(names, kv[0])
		}
	}
	names = append(names, "Retry-After", "WWW-Authenticate", cors.HeaderAllowOrigin, cors.HeaderAllowMethods,
		cors.HeaderAllowHeaders, cors.HeaderAllowCredentials, cors.HeaderExposeHeaders, cors.HeaderMaxAge, cors.HeaderVary)
	m := make(map[string]string, len(names))
	for _, name := range names {
		m[name] = http.CanonicalHeaderKey(name)
	}
	return m
}

func appendUnique(list []string, s string) []string {
	for i := 0; i < len(list); i++ {
		if strings.EqualFold(list[i], s) {
			return list
		}
	}
	return append(list, s)
}

// upstreamName names the breaker of an upstream: its host:port, or
// "default" for data planes that route to upstreams of their own.
func upstreamName(u string) string {
	if u == "" {
		return "default"
	}
	s := u
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	return s
}

// AwaitingKeys lists the JWT providers whose keys have not arrived yet
// (their tokens are refused with no_keys), except those the policy lets be
// ready without them (jwks.readyWithoutKeys). A data plane is not ready
// while it is not empty.
func (e *Engine) AwaitingKeys() []string {
	if e.verifier == nil {
		return nil
	}
	var names []string
	missing := e.verifier.WithoutKeys()
	for i := 0; i < len(missing); i++ {
		if !e.keysOptional[missing[i]] {
			names = append(names, missing[i])
		}
	}
	return names
}

// Policy returns the policy the engine applies.
func (e *Engine) Policy() *policy.Policy { return e.policy }

// Breakers returns the engine's breaker registry (admin endpoints).
func (e *Engine) Breakers() *breaker.Registry { return e.breakers }

// LocalRateStore returns the per-process rate-limit store, to share with the
// next engine on reload.
func (e *Engine) LocalRateStore() *ratelimit.Memory { return e.local }

// Close stops background work (JWKS refresh, and the memory store the engine
// created itself). Stores passed in Options are the caller's to close.
func (e *Engine) Close() {
	if e.verifier != nil {
		e.verifier.Close()
	}
	if e.ownLocal && e.local != nil {
		e.local.Close()
	}
}

// sameHeaders reports whether two header lists are equal, in order.
func sameHeaders(a, b [][2]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i][0] != b[i][0] || a[i][1] != b[i][1] {
			return false
		}
	}
	return true
}
