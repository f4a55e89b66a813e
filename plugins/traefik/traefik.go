// Package traefik is contentguard as a Traefik middleware plugin: JWT and
// OAuth2 scopes, API keys, request IDs, GCRA rate limits, the circuit
// breaker, CORS and security headers from one policy file, decided by the
// engine every contentguard data plane uses (package edge), so that the
// same policy gives the same answer in Traefik as in the sidecar, Kong and
// NGINX.
//
// Traefik runs plugins interpreted by Yaegi v0.16.1. Everything this
// package and the engine run per request is written for that interpreter
// (see docs/traefik.md, "Why it is fast"): few interpreted calls, compiled
// standard-library calls for the work, and nothing Yaegi v0.16.1 runs
// wrongly (TestYaegiGuard lists the constructs).
//
// Traefik does the proxying; the middleware decides before it and sees the
// answer after it. A request the policy refuses is answered here with an
// RFC 9457 problem and never reaches the service. An allowed one goes on to
// the next handler with the decision's upstream headers (request ID,
// verified identity) and normalised path, and its answer gets the
// decision's response headers (request ID, rate limits, CORS, security
// headers) while the circuit breaker is told its status.
package traefik

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/yamlnode"
)

// Config is the plugin's configuration: the middleware's options in
// Traefik's dynamic configuration. Traefik decodes them with mapstructure,
// which matches option names to these field names without regard to case
// (policyFile, policy) and ignores the json tags, which are here for
// Traefik's plugin catalog and for tools that render the configuration.
// Exactly one of the two is set.
type Config struct {
	// PolicyFile is the path of the policy file on the Traefik host (in
	// the container: mount it). Relative references in the policy (JWKS
	// files, secrets) resolve against the file's directory. It is read when
	// Traefik builds the middleware, at start and on every change of the
	// dynamic configuration.
	PolicyFile string `json:"policyFile,omitempty"`
	// Policy is the policy document itself, YAML or JSON. Relative
	// references in it resolve against Traefik's working directory: prefer
	// absolute paths.
	Policy string `json:"policy,omitempty"`
}

// CreateConfig returns an empty configuration for Traefik to decode the
// middleware's options into.
func CreateConfig() *Config { return &Config{} }

// MaxPolicyBytes bounds a policy document (policy files are a few KiB).
const MaxPolicyBytes = yamlnode.MaxBytes

// New builds the middleware called name in front of next. It reads and
// checks the policy once, here: a policy that cannot be read or does not
// validate is an error naming file:line:col, and Traefik then disables the
// middleware (and, being one plugin, every other plugin too: see
// docs/traefik.md). A middleware whose policy is unchanged keeps its engine
// across Traefik's rebuilds, and with it its rate-limit budgets, breakers
// and verified-token cache.
//
// Before a new policy's middleware is returned, one decision of every kind
// has run through a copy of it (warmUp), so that the interpreter has
// resolved every path before Traefik sends it concurrent requests.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if next == nil {
		return nil, fmt.Errorf("contentguard %s: no next handler", name)
	}
	if config == nil {
		config = CreateConfig()
	}
	p, err := config.load(name)
	if err != nil {
		return nil, fmt.Errorf("contentguard %s: %w", name, err)
	}
	now, after := clockFrom(ctx)
	e, err := engines.bind(ctx, name, p, now)
	if err != nil {
		return nil, fmt.Errorf("contentguard %s: %w", name, err)
	}
	return newMiddleware(next, name, e, p, after), nil
}

func newMiddleware(next http.Handler, name string, e *edge.Engine, p *policy.Policy, after func(time.Duration, func()) *time.Timer) *Middleware {
	return &Middleware{next: next, name: name, engine: e, maxBody: p.Spec.Limits.MaxBodyBytes, after: after}
}

// load reads the configured policy.
func (c *Config) load(name string) (*policy.Policy, error) {
	switch {
	case c.PolicyFile == "" && c.Policy == "":
		return nil, errors.New("set one of policyFile and policy")
	case c.PolicyFile != "" && c.Policy != "":
		return nil, errors.New("set only one of policyFile and policy, not both")
	case c.Policy != "":
		if len(c.Policy) > MaxPolicyBytes {
			return nil, fmt.Errorf("policy: larger than %d bytes", MaxPolicyBytes)
		}
		return yamlnode.Decode("middleware "+name+" policy", []byte(c.Policy))
	}
	data, err := readFile(c.PolicyFile)
	if err != nil {
		return nil, err
	}
	p, err := yamlnode.Decode(c.PolicyFile, data)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(c.PolicyFile))
	if err != nil {
		dir = filepath.Dir(c.PolicyFile)
	}
	p.BaseDir = dir
	return p, nil
}

// readFile reads at most MaxPolicyBytes of path; any read error is an
// error (the part read before it could be a valid, shorter policy).
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	if len(data) > MaxPolicyBytes {
		return nil, fmt.Errorf("read policy %s: larger than %d bytes", path, MaxPolicyBytes)
	}
	return data, nil
}

// clockKey is the context key of WithClock.
type clockKey struct{}

// clock is what a middleware reads the time from and times its upstream
// with.
type clock struct {
	now   func() time.Time
	after func(time.Duration, func()) *time.Timer
}

// WithClock returns a context under which New builds a middleware that
// follows a clock of the caller's instead of the system's: its rate limits,
// breaker and token expiry read now, and its upstream timeouts are after's
// timers. after is time.AfterFunc's contract: call f in a goroutine of its
// own after d unless stopped first; a test's may return a timer of a long
// duration and call f itself when it moves time past d, stopping the timer
// first so that Stop reports it fired. Traefik never sets it; tests and
// simulations do, to move time and fire timeouts without waiting. (Funcs,
// not an interface: Yaegi cannot hand an interpreted interface a compiled
// value.)
func WithClock(ctx context.Context, now func() time.Time, after func(d time.Duration, f func()) *time.Timer) context.Context {
	return context.WithValue(ctx, clockKey{}, clock{now: now, after: after})
}

func clockFrom(ctx context.Context) (func() time.Time, func(time.Duration, func()) *time.Timer) {
	if c, ok := ctx.Value(clockKey{}).(clock); ok && c.now != nil && c.after != nil {
		return c.now, c.after
	}
	return time.Now, time.AfterFunc
}

// registry holds the plugin's engines by middleware name. Traefik calls New
// for every router's copy of every middleware whenever any part of the
// dynamic configuration changes (a container starts, a label changes): were
// each call to build a fresh engine, every such change would reset every
// client's rate-limit budget and every breaker. A middleware whose policy
// is unchanged keeps its engine; a changed policy gets a new engine over the
// same rate-limit store and breakers, as the sidecar does on reload.
type registry struct {
	mu     sync.Mutex
	byName map[string]*binding
}

// binding is what one middleware name enforces.
type binding struct {
	key      string // policy hash and base directory
	engine   *edge.Engine
	rates    *ratelimit.Memory
	breakers *breaker.Registry
}

// engines is the plugin's registry: Traefik gives each plugin its own
// interpreter, so this is per plugin, shared by its middlewares.
var engines = &registry{byName: map[string]*binding{}}

// bind returns the engine of the middleware called name for p.
func (g *registry) bind(ctx context.Context, name string, p *policy.Policy, now func() time.Time) (*edge.Engine, error) {
	key := p.Hash + "\x00" + p.BaseDir
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.byName[name]
	if old != nil && old.key == key {
		return old.engine, nil
	}
	b := &binding{key: key}
	if old != nil {
		b.rates, b.breakers = old.rates, old.breakers
	} else {
		b.rates = ratelimit.NewMemory(ratelimit.MemoryOptions{SweepInterval: ratelimit.DefaultSweepInterval, Now: now})
		b.breakers = edge.NewBreakers(p, now, nil)
	}
	e, err := edge.New(ctx, p, edge.Options{Now: now, LocalRateStore: b.rates, Breakers: b.breakers})
	if err == nil {
		err = warmUp(ctx, p, now)
	}
	if err != nil {
		if e != nil {
			e.Close()
		}
		if old == nil {
			b.rates.Close()
		}
		return nil, err
	}
	if old != nil {
		// Only now that the new policy has loaded: never half of one.
		b.breakers.Reconfigure(edge.BreakerSettings(p, now, nil))
		// Stops the old engine's key refresh; requests still in its hands
		// finish with the keys it has.
		old.engine.Close()
	}
	b.engine = e
	g.byName[name] = b
	return e, nil
}
