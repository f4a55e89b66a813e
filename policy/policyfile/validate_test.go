package policyfile

import (
	"strings"
	"testing"
)

// base is a minimal valid policy; cases below patch one part of it.
const base = `apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: t}
spec:
  auth:
    jwt:
      providers:
        - name: main
          issuer: https://i
          audiences: [api]
          jwks: {file: k.json}
    apiKeys:
      keys:
        - {id: k1, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, scopes: [read]}
  routes:
    - name: r
      match: {pathPrefix: /api/}
      auth: {anyOf: [jwt, apiKey], scopes: [read]}
`

func TestValidPolicyDefaults(t *testing.T) {
	p, err := Parse("p.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	s := p.Spec
	checks := []struct {
		name string
		ok   bool
	}{
		{"upstream timeout 30s", s.Upstream.Timeout.String() == "30s"},
		{"request id header", s.RequestID.Header == "X-Request-ID" && s.RequestID.TrustIncoming && s.RequestID.Format == "uuidv7"},
		{"client ip header", len(s.ClientIP.Headers) == 1 && s.ClientIP.Headers[0] == "X-Forwarded-For"},
		{"jwt algorithms", strings.Join(s.Auth.JWT.Providers[0].Algorithms, ",") == "ES256,RS256,EdDSA"},
		{"clock skew 30s", s.Auth.JWT.Providers[0].ClockSkew.String() == "30s"},
		{"scope claim", s.Auth.JWT.Providers[0].ScopeClaim == "scope"},
		{"api key header", s.Auth.APIKeys.Header == "X-API-Key"},
		{"memory store", s.RateLimit.Store.Type == "memory" && s.RateLimit.Store.OnError == "local" && s.RateLimit.Headers == "ietf"},
		{"breaker", s.CircuitBreaker.ConsecutiveFailures == 5 && s.CircuitBreaker.OpenFor.String() == "1m0s" && s.CircuitBreaker.HalfOpenRequests == 3},
		{"breaker failOn", s.CircuitBreaker.FailOn.Timeout && s.CircuitBreaker.FailOn.Connection && len(s.CircuitBreaker.FailOn.Statuses) == 3},
		{"strict headers", s.SecurityHeaders.Preset == "strict"},
		{"limits", s.Limits.MaxBodyBytes == 1<<20 && s.Limits.MaxHeaderBytes == 32<<10},
		{"hash", len(p.Hash) == 64},
		{"route body timeout 30s", s.Routes[0].BodyTimeout.String() == "30s"},
		{"no upgrades", !s.Routes[0].WebSocket},
		{"paths strict", !s.Paths.AllowParameters && !s.Paths.CaseInsensitive},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("default not applied: %s (%+v)", c.name, s)
		}
	}
}

// TestInvalidPolicies: each patch must fail with a positioned error that
// names the problem.
func TestInvalidPolicies(t *testing.T) {
	cases := []struct {
		name, from, to, want string
	}{
		{"unknown top-level key", "metadata: {name: t}", "metadata: {name: t}\nspecs: {}", `4:1: specs: unknown key "specs"`},
		{"unknown key", "  routes:", "  rutes: []\n  routes:", `5:3: spec.rutes: unknown key "rutes"`},
		{"wrong type", "audiences: [api]", "audiences: api", `10:22: spec.auth.jwt.providers[0].audiences: expected a list, got string "api"`},
		{"bad CIDR", "  routes:", "  clientIP: {trustedProxies: [300.1.1.1/8]}\n  routes:", `invalid CIDR "300.1.1.1/8"`},
		{"unknown algorithm", "jwks: {file: k.json}", "jwks: {file: k.json}\n          algorithms: [ES257]", `unknown algorithm "ES257"`},
		{"alg none", "jwks: {file: k.json}", "jwks: {file: k.json}\n          algorithms: [none]", `algorithm "none" is never allowed`},
		{"HS without secret", "jwks: {file: k.json}", "jwks: {file: k.json}\n          algorithms: [HS256]", `HS* algorithms need a shared secret`},
		{"secret without HS", "jwks: {file: k.json}", "jwks: {file: k.json}\n          secret: {env: X}", `a shared secret is used only with HS* algorithms`},
		{"negative rate", "apiKey], scopes: [read]}\n", "apiKey], scopes: [read]}\n      rateLimit: {rate: -5, per: 1m}\n", `rateLimit.rate: must be a positive number of requests, got -5`},
		{"rate finer than a microsecond", "apiKey], scopes: [read]}\n", "apiKey], scopes: [read]}\n      rateLimit: {rate: 1000000000, per: 1s}\n", `rateLimit.rate: 1000000000 requests per 1s is more than one per microsecond`},
		{"century bucket", "apiKey], scopes: [read]}\n", "apiKey], scopes: [read]}\n      rateLimit: {rate: 1, per: 8760h, burst: 101}\n", `rateLimit.burst: a bucket of 101 refilling at 1 per 8760h0m0s takes more than 100 years`},
		{"zero per", "apiKey], scopes: [read]}\n", "apiKey], scopes: [read]}\n      rateLimit: {rate: 5, per: 0s}\n", `rateLimit.per: duration must be positive`},
		{"bad rate key", "apiKey], scopes: [read]}\n", "apiKey], scopes: [read]}\n      rateLimit: {key: cookie, rate: 5, per: 1m}\n", `unknown key "cookie"`},
		{"duplicate route names", "apiKey], scopes: [read]}\n", "apiKey], scopes: [read]}\n    - {name: r, match: {path: /x}, auth: none}\n", `duplicate route name "r"`},
		{"scope with spaces", "scopes: [read]}", `scopes: ["read all"]}`, `invalid scope "read all"`},
		{"unknown auth method", "anyOf: [jwt, apiKey]", "anyOf: [jwt, cookie]", `unknown auth method "cookie"`},
		{"path not normalised", "pathPrefix: /api/", "pathPrefix: /api/../x/", `must start with / and be normalised`},
		{"path and prefix", "pathPrefix: /api/", "pathPrefix: /api/, path: /x", `exactly one of path or pathPrefix`},
		{"lower-case method", "pathPrefix: /api/", "pathPrefix: /api/, methods: [get]", `invalid method "get"`},
		{"bad api key hash", "sha256: 9f86", "sha256: zz86", `must be the 64 hex digits`},
		{"duration syntax", "jwks: {file: k.json}", "jwks: {file: k.json}\n          clockSkew: 30 seconds", `invalid duration "30 seconds"`},
		{"skew too large", "jwks: {file: k.json}", "jwks: {file: k.json}\n          clockSkew: 1h", `at most 5m0s`},
		{"no audience", "audiences: [api]", "audiences: []", `at least one audience is required`},
		{"two key sources", "jwks: {file: k.json}", "jwks: {file: k.json, url: https://x/jwks}", `exactly one of file, url or inline`},
		{"readyWithoutKeys on a file", "jwks: {file: k.json}", "jwks: {file: k.json, readyWithoutKeys: true}", `readyWithoutKeys: applies to url key sets only`},
		{"readyWithoutKeys not a bool", "jwks: {file: k.json}", "jwks: {url: https://x/jwks, readyWithoutKeys: yes please}", `expected true or false`},
		{"CORS null", "  routes:", "  cors: {allowOrigins: [\"null\"]}\n  routes:", `"null" is never an allowed origin`},
		{"CORS star with credentials", "  routes:", "  cors: {allowOrigins: [\"*\"], allowCredentials: true}\n  routes:", `cannot be combined with allowCredentials`},
		{"CORS bad origin", "  routes:", "  cors: {allowOrigins: [\"https://a.com/path\"]}\n  routes:", `invalid origin`},
		{"redis without url", "  routes:", "  rateLimit: {store: {type: redis}}\n  routes:", `a redis store needs a redis://`},
		{"unknown onError", "  routes:", "  rateLimit: {store: {type: memory, onError: maybe}}\n  routes:", `unknown mode "maybe"`},
		{"bad size", "  routes:", "  limits: {maxBodyBytes: 1 MiBs}\n  routes:", `invalid size "1 MiBs"`},
		{"ratio out of range", "  routes:", "  circuitBreaker: {failureRatio: {ratio: 1.5}}\n  routes:", `must be in (0, 1]`},
		{"failOn 4xx", "  routes:", "  circuitBreaker: {failOn: [404]}\n  routes:", `only 5xx statuses`},
		{"bool as string", "  routes:", "  requestID: {trustIncoming: \"yes\"}\n  routes:", `expected true or false`},
		{"unknown security preset", "  routes:", "  securityHeaders: lax\n  routes:", `unknown preset "lax"`},
		{"header injection in custom header", "  routes:", "  securityHeaders: {X-A: \"a\\r\\nSet-Cookie: x\"}\n  routes:", `must not contain CR, LF or NUL`},
		{"no routes", "  routes:\n", "  routez:\n", `unknown key "routez"`},
		{"public route keyed by subject", "apiKey], scopes: [read]}\n", "apiKey], scopes: [read]}\n    - {name: p, match: {path: /p}, auth: none, rateLimit: {key: subject, rate: 1, per: 1m}}\n", `needs an authenticated route`},
		{"yaml alias", "metadata: {name: t}", "metadata: &m {name: t}\nx: *m", `aliases are not allowed`},
		{"wrong apiVersion", "contentguard.dev/v1", "contentguard.dev/v2", `apiVersion: must be "contentguard.dev/v1"`},
		{"syntax error", "  routes:", "  routes: [\n", `did not find expected`},
		{"body timeout zero", "apiKey], scopes: [read]}\n", "apiKey], scopes: [read]}\n      bodyTimeout: 0s\n", `bodyTimeout: duration must be positive`},
		{"websocket as string", "apiKey], scopes: [read]}\n", "apiKey], scopes: [read]}\n      websocket: \"yes\"\n", `websocket: expected true or false`},
		{"route path with parameter", "pathPrefix: /api/", "pathPrefix: /api;v=1/", `has a ';' path parameter`},
		{"unknown paths key", "  routes:", "  paths: {ignoreCase: true}\n  routes:", `spec.paths.ignoreCase: unknown key "ignoreCase"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(base, c.from) {
				t.Fatalf("patch anchor %q not in base", c.from)
			}
			doc := strings.Replace(base, c.from, c.to, 1)
			_, err := Parse("p.yaml", []byte(doc))
			if err == nil {
				t.Fatalf("accepted:\n%s", doc)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error does not mention %q:\n%v", c.want, err)
			}
			if !strings.HasPrefix(err.Error(), "p.yaml:") {
				t.Fatalf("error not positioned: %v", err)
			}
		})
	}
}

// TestJSONAndYAMLAgree: the JSON front-end (what the Traefik plugin reads)
// yields the same policy as YAML.
func TestJSONAndYAMLAgree(t *testing.T) {
	node, err := ParseYAML(DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	fromYAML, err := Parse("d.yaml", DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := policyDecodeJSON([]byte(node.JSON()))
	if err != nil {
		t.Fatal(err)
	}
	fromJSON.Hash, fromJSON.Source = fromYAML.Hash, fromYAML.Source
	if a, b := describePolicy(fromYAML), describePolicy(fromJSON); a != b {
		t.Fatalf("YAML and JSON decode differently:\n%s\n%s", a, b)
	}
}
