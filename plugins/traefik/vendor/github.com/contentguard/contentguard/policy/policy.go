// Package policy is the contentguard edge policy: the model of policy v1,
// declared once, as the Go types below, and its strict decoder, defaults
// and cross-field validation.
//
// A Policy is an immutable value. Front-ends turn a document into a Node tree
// (package policyfile for YAML files and the embedded default; ParseJSON here)
// and Decode checks every key, type and value, reporting each problem with its
// file, line and column. Decode either returns a complete, valid Policy or
// errors: a policy is never half-applied.
//
// Each field's `policy` tag says how it is read:
//
//	policy:"key"                the document's key (strict: any other key is an error)
//	policy:"-"                  not read from the document
//	policy:",line"              the line of the enclosing mapping
//	required                    the key must be there (a string, not empty): else "is required"
//	default=EXPR                the value when the key is absent or its value empty (0, "", []);
//	                            for a bool, or a field marked zero, only when absent
//	zero                        an explicit zero is a value of its own
//	enum=NOUN:a|b|c             one of the values, else "unknown NOUN … (use a, b or c)"
//	check=NAME                  decoder.NAME(node, path, value) checks the decoded value
//	decode=NAME                 decoder.NAME(node, path) decodes the field instead
//	keys=a|b                    a nested mapping accepts only these of its keys
//
// decode_gen.go is the decoder these tags make (go generate; a test fails
// when it drifts from them); decode.go holds what it calls, validate.go
// the rules that span fields.
//
// The package uses only the standard library, and no reflection, so that
// the Traefik plugin can run it under the Yaegi interpreter.
package policy

//go:generate go run ./internal/decodegen

import (
	"net/netip"
	"time"
)

// APIVersion and KindEdgePolicy identify a policy v1 document.
const (
	APIVersion     = "contentguard.dev/v1"
	KindEdgePolicy = "EdgePolicy"
)

// Defaults of policy v1. Every one is documented in docs/policy.md.
const (
	DefaultUpstreamTimeout     = 30 * time.Second
	DefaultClientIPHeader      = "X-Forwarded-For"
	DefaultRequestIDHeader     = "X-Request-ID"
	DefaultRequestIDFormat     = "uuidv7"
	DefaultClockSkew           = 30 * time.Second
	MaxClockSkew               = 5 * time.Minute
	DefaultScopeClaim          = "scope"
	DefaultJWKSRefresh         = 5 * time.Minute
	DefaultAPIKeyHeader        = "X-API-Key"
	DefaultTokenPath           = "/api/v1/auth/token"
	DefaultAccessTTL           = 30 * time.Minute
	DefaultRefreshTTL          = 720 * time.Hour
	DefaultStore               = "memory"
	DefaultStoreOnError        = "local"
	DefaultRateLimitHeaders    = "ietf"
	DefaultRateKey             = "ip"
	DefaultConsecutiveFailures = 5
	DefaultOpenFor             = 60 * time.Second
	DefaultHalfOpenRequests    = 3
	DefaultRatioWindow         = 10 * time.Second
	DefaultRatioMinRequests    = 20
	DefaultSecurityPreset      = "strict"
	DefaultMaxBodyBytes        = 1 << 20
	DefaultMaxHeaderBytes      = 32 << 10
	DefaultBodyTimeout         = 30 * time.Second
)

// defaultAlgorithms are the JWT algorithms a provider accepts when it names none.
var defaultAlgorithms = []string{"ES256", "RS256", "EdDSA"}

// Policy is a decoded, defaulted and validated policy document.
type Policy struct {
	APIVersion string   `policy:"apiVersion,check=apiVersion"`
	Kind       string   `policy:"kind,check=kind"`
	Metadata   Metadata `policy:"metadata"`
	Spec       Spec     `policy:"spec,required"`

	// Source names where the policy came from (a file path or "embedded").
	Source string `policy:"-"`
	// BaseDir resolves relative file references (JWKS, keys, secrets).
	BaseDir string `policy:"-"`
	// Hash is the SHA-256 of the source document, hex encoded.
	Hash string `policy:"-"`
}

// Metadata names a policy.
type Metadata struct {
	Name    string            `policy:"name"`
	Version string            `policy:"version"`
	Labels  map[string]string `policy:"labels"`
}

// Spec is what the edge enforces.
type Spec struct {
	Upstream        Upstream        `policy:"upstream"`
	ClientIP        ClientIP        `policy:"clientIP"`
	RequestID       RequestID       `policy:"requestID"`
	Auth            Auth            `policy:"auth"`
	TokenIssuer     *TokenIssuer    `policy:"tokenIssuer"`
	RateLimit       RateLimit       `policy:"rateLimit"`
	CircuitBreaker  CircuitBreaker  `policy:"circuitBreaker"`
	CORS            *CORS           `policy:"cors"`
	SecurityHeaders SecurityHeaders `policy:"securityHeaders,decode=securityHeaders"`
	Limits          Limits          `policy:"limits"`
	Paths           Paths           `policy:"paths"`
	Routes          []Route         `policy:"routes,check=routes"`
}

// Upstream is where allowed requests go (sidecar, xDS).
type Upstream struct {
	URL     string        `policy:"url,check=upstreamURL"`
	Timeout time.Duration `policy:"timeout,default=DefaultUpstreamTimeout"` // per attempt; the edge answers 504 past it
}

// ClientIP says how the real client address is found behind proxies.
type ClientIP struct {
	TrustedProxies []netip.Prefix `policy:"trustedProxies,decode=prefixes"`
	// X-Forwarded-For, Forwarded, X-Real-IP; in order of preference.
	Headers []string `policy:"headers,decode=clientIPHeaders"`
}

// RequestID configures request identifiers.
type RequestID struct {
	Header        string   `policy:"header,default=DefaultRequestIDHeader,check=headerName"`
	AlsoHeaders   []string `policy:"alsoHeaders,check=headerNames"`
	TrustIncoming bool     `policy:"trustIncoming,default=true"`
	Format        string   `policy:"format,default=DefaultRequestIDFormat,enum=format:uuidv7|uuidv4"`
}

// Auth holds the credential verifiers that routes may require.
type Auth struct {
	JWT     JWT      `policy:"jwt"`
	APIKeys *APIKeys `policy:"apiKeys"`
}

// JWT lists the trusted token issuers.
type JWT struct {
	Providers []JWTProvider `policy:"providers"`
}

// JWTProvider is one trusted issuer of JSON Web Tokens.
type JWTProvider struct {
	Name       string        `policy:"name,required"`
	Issuer     string        `policy:"issuer,required"`
	Audiences  []string      `policy:"audiences,check=audiences"`
	Algorithms []string      `policy:"algorithms,default=defaultAlgorithms,check=algorithms"`
	JWKS       *KeySource    `policy:"jwks"`
	Secret     *SecretRef    `policy:"secret"` // HS* shared secret
	ClockSkew  time.Duration `policy:"clockSkew,default=DefaultClockSkew,zero,check=clockSkew"`
	ScopeClaim string        `policy:"scopeClaim,default=DefaultScopeClaim"`
	// ForwardClaims maps claim names to the upstream headers that carry them,
	// sorted by claim name.
	ForwardClaims []ClaimHeader `policy:"forwardClaims,decode=forwardClaims"`
}

// ClaimHeader forwards one verified claim upstream in a header.
type ClaimHeader struct {
	Claim  string
	Header string
}

// KeySource is where a key set comes from: exactly one of File, URL, Inline.
type KeySource struct {
	File    string        `policy:"file"`
	URL     string        `policy:"url,check=keyURL"`
	Inline  string        `policy:"inline,decode=inline"` // JSON text
	Refresh time.Duration `policy:"refresh"`
	// ReadyWithoutKeys lets the data plane report ready before a URL key
	// set has arrived (its tokens are refused with no_keys until then);
	// by default readiness waits for every provider's keys.
	ReadyWithoutKeys bool `policy:"readyWithoutKeys"`
}

// SecretRef is a secret read from a file, an environment variable or inline.
type SecretRef struct {
	File  string `policy:"file"`
	Env   string `policy:"env"`
	Value string `policy:"value"`
}

// APIKeys configures API-key authentication.
type APIKeys struct {
	Header string   `policy:"header,default=DefaultAPIKeyHeader,check=headerName"`
	Keys   []APIKey `policy:"keys,check=apiKeys"`
}

// APIKey is a stored key: only its SHA-256 is kept.
type APIKey struct {
	ID     string   `policy:"id,required"`
	SHA256 [32]byte `policy:"sha256,decode=sha256"`
	Scopes []string `policy:"scopes,check=scopes"`
}

// TokenIssuer is the OAuth2 token endpoint the sidecar serves.
type TokenIssuer struct {
	Path       string        `policy:"path,default=DefaultTokenPath,check=tokenPath"`
	Issuer     string        `policy:"issuer,required"`
	Audience   string        `policy:"audience,required"`
	SigningKey KeySource     `policy:"signingKey,keys=file|url|inline"`
	AccessTTL  time.Duration `policy:"accessTTL,default=DefaultAccessTTL"`
	RefreshTTL time.Duration `policy:"refreshTTL,default=DefaultRefreshTTL"`
	Users      []Principal   `policy:"users,decode=users"`
	Clients    []Principal   `policy:"clients,decode=clients"`
}

// Principal is a user (password grant) or client (client_credentials grant).
type Principal struct {
	Name   string // username or client id
	Bcrypt string
	Scopes []string
}

// RateLimit configures the shared rate-limit store and response headers.
type RateLimit struct {
	Store   Store  `policy:"store"`
	Headers string `policy:"headers,default=DefaultRateLimitHeaders,enum=header style:ietf|legacy|both|none"`
}

// Store is the rate-limit state store.
type Store struct {
	Type    string `policy:"type,default=DefaultStore,enum=store:memory|redis"`
	URL     string `policy:"url"`
	OnError string `policy:"onError,default=DefaultStoreOnError,enum=mode:local|deny|allow"`
}

// CircuitBreaker configures the breaker in front of the upstream.
type CircuitBreaker struct {
	ConsecutiveFailures int           `policy:"consecutiveFailures,default=DefaultConsecutiveFailures,zero,check=consecutiveFailures"`
	FailureRatio        *FailureRatio `policy:"failureRatio"`
	OpenFor             time.Duration `policy:"openFor,default=DefaultOpenFor"`
	HalfOpenRequests    int           `policy:"halfOpenRequests,default=DefaultHalfOpenRequests,zero,check=halfOpenRequests"`
	FailOn              FailOn        `policy:"failOn,decode=failOn"`
}

// FailureRatio trips the breaker on a share of failures over a rolling window.
type FailureRatio struct {
	Ratio       float64       `policy:"ratio,check=ratio"`
	MinRequests int           `policy:"minRequests,default=DefaultRatioMinRequests,check=notNegative"`
	Window      time.Duration `policy:"window,default=DefaultRatioWindow"`
}

// FailOn says which upstream outcomes count as failures.
type FailOn struct {
	Statuses   []int
	Timeout    bool
	Connection bool
}

// CORS configures cross-origin resource sharing.
type CORS struct {
	AllowOrigins     []string      `policy:"allowOrigins"`
	AllowMethods     []string      `policy:"allowMethods,check=methods"`
	AllowHeaders     []string      `policy:"allowHeaders,check=headerNames"`
	ExposeHeaders    []string      `policy:"exposeHeaders,check=headerNames"`
	AllowCredentials bool          `policy:"allowCredentials"`
	MaxAge           time.Duration `policy:"maxAge"`
}

// SecurityHeaders is a preset ("strict" or "none") or a custom set.
type SecurityHeaders struct {
	Preset string
	Custom map[string]string
}

// Limits bounds request sizes.
type Limits struct {
	MaxBodyBytes   int64 `policy:"maxBodyBytes,decode=size,default=DefaultMaxBodyBytes"`
	MaxHeaderBytes int64 `policy:"maxHeaderBytes,decode=size,default=DefaultMaxHeaderBytes"`
}

// Paths says how request paths are read for matching, so that the edge
// reads them as the upstream does.
type Paths struct {
	// AllowParameters admits ';' path parameters ("/admin;jsessionid=1/",
	// which Tomcat, Jetty and Spring read as "/admin/"): routes are then
	// matched on the path without them. Off, a path with a ';' (raw or
	// %3B) is refused with 400.
	AllowParameters bool `policy:"allowParameters"`
	// CaseInsensitive matches route paths without regard to ASCII case, for
	// upstreams that read "/ADMIN/" as "/admin/" (IIS, some Java stacks).
	CaseInsensitive bool `policy:"caseInsensitive"`
}

// Route is one entry of the route table; the first match wins.
type Route struct {
	Name      string          `policy:"name,required"`
	Match     Match           `policy:"match,required"`
	Auth      RouteAuth       `policy:"auth,decode=routeAuth"`
	RateLimit *RouteRateLimit `policy:"rateLimit"`
	// WebSocket lets a GET with "Upgrade: websocket" be tunnelled to the
	// upstream; without it every upgrade but h2c (which is dropped) is
	// refused.
	WebSocket bool `policy:"websocket"`
	// BodyTimeout bounds the arrival of the request body, counted from the
	// end of the request head: a slower client gets 408.
	BodyTimeout time.Duration `policy:"bodyTimeout,default=DefaultBodyTimeout"`
	Line        int           `policy:",line"` // where the route is defined, for explanations
}

// Match selects requests by normalised path and method.
type Match struct {
	Path       string   `policy:"path"`
	PathPrefix string   `policy:"pathPrefix"`
	Methods    []string `policy:"methods,check=methods"` // empty: any method
}

// RouteAuth says which credentials a route accepts and which scopes it needs.
type RouteAuth struct {
	None   bool     `policy:"-"`                   // public route (auth: none)
	AnyOf  []string `policy:"anyOf"`               // "jwt", "apiKey"
	Scopes []string `policy:"scopes,check=scopes"` // all required
}

// RouteRateLimit is a GCRA limit: Rate requests Per period, bucket size Burst.
type RouteRateLimit struct {
	Key   string        `policy:"key,default=DefaultRateKey,zero,check=rateKey"` // ip, subject, apiKey, route, header:NAME, claim:NAME
	Rate  int           `policy:"rate,required,check=requests"`
	Per   time.Duration `policy:"per,required"`
	Burst int           `policy:"burst,check=requests"`
}
