package edge

import (
	"fmt"
	"strings"
	"time"

	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/edge/urlpath"
	"github.com/contentguard/contentguard/policy"
)

// route is a policy route compiled for matching.
type route struct {
	name    string
	exact   string
	prefix  string
	methods []string

	public bool
	anyOf  []string
	scopes []string
	// scopeHeader is the WWW-Authenticate value for a missing scope.
	scopeHeader string
	// accepts names the credentials the route takes, for problem details.
	accepts string

	limit   *ratelimit.Limit
	rateKey string // ip, subject, apiKey, route, header:NAME, claim:NAME
	keyArg  string // NAME of header:NAME or claim:NAME
	keyBase string // route name + "|" prefix of every bucket key

	websocket   bool
	bodyTimeout time.Duration
}

// compileRoutes compiles the route table; fold lower-cases the route paths
// for case-insensitive matching (spec.paths.caseInsensitive).
func compileRoutes(rs []policy.Route, fold bool) ([]route, error) {
	out := make([]route, 0, len(rs))
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		c := route{
			name:        r.Name,
			exact:       r.Match.Path,
			prefix:      r.Match.PathPrefix,
			methods:     r.Match.Methods,
			public:      r.Auth.None,
			anyOf:       r.Auth.AnyOf,
			scopes:      r.Auth.Scopes,
			keyBase:     r.Name + "|",
			websocket:   r.WebSocket,
			bodyTimeout: r.BodyTimeout,
		}
		if fold {
			// Two statements: Yaegi loses the first of a, b = f(x), f(y).
			c.exact = strings.ToLower(c.exact)
			c.prefix = strings.ToLower(c.prefix)
		}
		c.accepts = acceptsText(c.anyOf)
		if len(c.scopes) > 0 {
			c.scopeHeader = `Bearer error="insufficient_scope", error_description="the token lacks a required scope", scope="` + strings.Join(c.scopes, " ") + `"`
		}
		if rl := r.RateLimit; rl != nil {
			c.limit = &ratelimit.Limit{Rate: rl.Rate, Per: rl.Per, Burst: rl.Burst}
			if err := c.limit.Validate(); err != nil {
				// Refused here rather than on every request at run time.
				return nil, fmt.Errorf("edge: route %s: %v", r.Name, err)
			}
			c.rateKey = rl.Key
			if i := strings.IndexByte(rl.Key, ':'); i > 0 {
				c.rateKey = rl.Key[:i]
				c.keyArg = rl.Key[i+1:]
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func acceptsText(anyOf []string) string {
	names := make([]string, 0, len(anyOf))
	for i := 0; i < len(anyOf); i++ {
		switch anyOf[i] {
		case "jwt":
			names = append(names, "a bearer token")
		case "apiKey":
			names = append(names, "an API key")
		}
	}
	return strings.Join(names, " or ")
}

// matchForm is the form of a normalised path that routes are matched
// against: without ';' parameters when the policy admits them, in lower
// case when it matches without regard to case. The upstream still receives
// the normalised path itself.
func matchForm(e *Engine, path string) string {
	if e.params {
		path = urlpath.StripParameters(path)
	}
	if e.fold {
		path = strings.ToLower(path)
	}
	return path
}

// match returns the first route whose path and method match the
// normalised path, or nil. (One function with the match form inline: under
// Yaegi every call costs.) The method is matched in upper case, the case
// routes name methods in: upstreams that upper-case a request's method
// (Django, Werkzeug) read a "delete" as DELETE, so it must meet DELETE's
// route, not one without a method list. (strings.ToUpper returns an
// upper-case method as it is, without allocating.)
func match(e *Engine, method, path string) *route {
	method = strings.ToUpper(method)
	if e.params {
		path = urlpath.StripParameters(path)
	}
	if e.fold {
		path = strings.ToLower(path)
	}
	for i := 0; i < len(e.routes); i++ {
		r := &e.routes[i]
		if r.exact != "" && path != r.exact {
			continue
		}
		if r.prefix != "" && (len(path) < len(r.prefix) || path[:len(r.prefix)] != r.prefix) {
			continue
		}
		// The method list inline, not a call per route.
		allowed := len(r.methods) == 0
		for j := 0; j < len(r.methods) && !allowed; j++ {
			allowed = r.methods[j] == method
		}
		if allowed {
			return r
		}
	}
	return nil
}
