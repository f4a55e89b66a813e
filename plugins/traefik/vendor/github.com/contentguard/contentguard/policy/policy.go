// Package policy is the contentguard edge policy: the model of policy v1,
// its strict decoder, defaults and cross-field validation.
//
// A Policy is an immutable value. Front-ends turn a document into a Node tree
// (package policyfile for YAML files and the embedded default; ParseJSON here)
// and Decode checks every key, type and value, reporting each problem with its
// file, line and column. Decode either returns a complete, valid Policy or
// errors: a policy is never half-applied.
//
// The package uses only the standard library so that the Traefik plugin can run
// it under the Yaegi interpreter.
package policy

import (
	"net/netip"
	"time"
)

// APIVersion and KindEdgePolicy identify a policy v1 document.
const (
	APIVersion     = "contentguard.dev/v1"
	KindEdgePolicy = "EdgePolicy"
)

// Policy is a decoded, defaulted and validated policy document.
type Policy struct {
	APIVersion string
	Kind       string
	Metadata   Metadata
	Spec       Spec

	// Source names where the policy came from (a file path or "embedded").
	Source string
	// BaseDir resolves relative file references (JWKS, keys, secrets).
	BaseDir string
	// Hash is the SHA-256 of the source document, hex encoded.
	Hash string
}

// Metadata names a policy.
type Metadata struct {
	Name    string
	Version string
	Labels  map[string]string
}

// Spec is what the edge enforces.
type Spec struct {
	Upstream        Upstream
	ClientIP        ClientIP
	RequestID       RequestID
	Auth            Auth
	TokenIssuer     *TokenIssuer
	RateLimit       RateLimit
	CircuitBreaker  CircuitBreaker
	CORS            *CORS
	SecurityHeaders SecurityHeaders
	Limits          Limits
	Paths           Paths
	Routes          []Route
}

// Upstream is where allowed requests go (sidecar, xDS).
type Upstream struct {
	URL     string
	Timeout time.Duration // per attempt; the edge answers 504 past it
}

// ClientIP says how the real client address is found behind proxies.
type ClientIP struct {
	TrustedProxies []netip.Prefix
	Headers        []string // X-Forwarded-For, Forwarded, X-Real-IP; in order of preference
}

// RequestID configures request identifiers.
type RequestID struct {
	Header        string
	AlsoHeaders   []string
	TrustIncoming bool
	Format        string // uuidv7 or uuidv4
}

// Auth holds the credential verifiers that routes may require.
type Auth struct {
	JWT     JWT
	APIKeys *APIKeys
}

// JWT lists the trusted token issuers.
type JWT struct {
	Providers []JWTProvider
}

// JWTProvider is one trusted issuer of JSON Web Tokens.
type JWTProvider struct {
	Name       string
	Issuer     string
	Audiences  []string
	Algorithms []string
	JWKS       *KeySource
	Secret     *SecretRef // HS* shared secret
	ClockSkew  time.Duration
	ScopeClaim string
	// ForwardClaims maps claim names to the upstream headers that carry them,
	// sorted by claim name.
	ForwardClaims []ClaimHeader
}

// ClaimHeader forwards one verified claim upstream in a header.
type ClaimHeader struct {
	Claim  string
	Header string
}

// KeySource is where a key set comes from: exactly one of File, URL, Inline.
type KeySource struct {
	File    string
	URL     string
	Inline  string // JSON text
	Refresh time.Duration
	// ReadyWithoutKeys lets the data plane report ready before a URL key
	// set has arrived (its tokens are refused with no_keys until then);
	// by default readiness waits for every provider's keys.
	ReadyWithoutKeys bool
}

// SecretRef is a secret read from a file, an environment variable or inline.
type SecretRef struct {
	File  string
	Env   string
	Value string
}

// APIKeys configures API-key authentication.
type APIKeys struct {
	Header string
	Keys   []APIKey
}

// APIKey is a stored key: only its SHA-256 is kept.
type APIKey struct {
	ID     string
	SHA256 [32]byte
	Scopes []string
}

// TokenIssuer is the OAuth2 token endpoint the sidecar serves.
type TokenIssuer struct {
	Path       string
	Issuer     string
	Audience   string
	SigningKey KeySource
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	Users      []Principal
	Clients    []Principal
}

// Principal is a user (password grant) or client (client_credentials grant).
type Principal struct {
	Name   string // username or client id
	Bcrypt string
	Scopes []string
}

// RateLimit configures the shared rate-limit store and response headers.
type RateLimit struct {
	Store   Store
	Headers string // ietf, legacy, both, none
}

// Store is the rate-limit state store.
type Store struct {
	Type    string // memory or redis
	URL     string
	OnError string // local, deny, allow
}

// CircuitBreaker configures the breaker in front of the upstream.
type CircuitBreaker struct {
	ConsecutiveFailures int
	FailureRatio        *FailureRatio
	OpenFor             time.Duration
	HalfOpenRequests    int
	FailOn              FailOn
}

// FailureRatio trips the breaker on a share of failures over a rolling window.
type FailureRatio struct {
	Ratio       float64
	MinRequests int
	Window      time.Duration
}

// FailOn says which upstream outcomes count as failures.
type FailOn struct {
	Statuses   []int
	Timeout    bool
	Connection bool
}

// CORS configures cross-origin resource sharing.
type CORS struct {
	AllowOrigins     []string
	AllowMethods     []string
	AllowHeaders     []string
	ExposeHeaders    []string
	AllowCredentials bool
	MaxAge           time.Duration
}

// SecurityHeaders is a preset ("strict" or "none") or a custom set.
type SecurityHeaders struct {
	Preset string
	Custom map[string]string
}

// Limits bounds request sizes.
type Limits struct {
	MaxBodyBytes   int64
	MaxHeaderBytes int64
}

// Paths says how request paths are read for matching, so that the edge
// reads them as the upstream does.
type Paths struct {
	// AllowParameters admits ';' path parameters ("/admin;jsessionid=1/",
	// which Tomcat, Jetty and Spring read as "/admin/"): routes are then
	// matched on the path without them. Off, a path with a ';' (raw or
	// %3B) is refused with 400.
	AllowParameters bool
	// CaseInsensitive matches route paths without regard to ASCII case, for
	// upstreams that read "/ADMIN/" as "/admin/" (IIS, some Java stacks).
	CaseInsensitive bool
}

// Route is one entry of the route table; the first match wins.
type Route struct {
	Name      string
	Match     Match
	Auth      RouteAuth
	RateLimit *RouteRateLimit
	// WebSocket lets a GET with "Upgrade: websocket" be tunnelled to the
	// upstream; without it every upgrade but h2c (which is dropped) is
	// refused.
	WebSocket bool
	// BodyTimeout bounds the arrival of the request body, counted from the
	// end of the request head: a slower client gets 408.
	BodyTimeout time.Duration
	Line        int // where the route is defined, for explanations
}

// Match selects requests by normalised path and method.
type Match struct {
	Path       string
	PathPrefix string
	Methods    []string // empty: any method
}

// RouteAuth says which credentials a route accepts and which scopes it needs.
type RouteAuth struct {
	None   bool     // public route
	AnyOf  []string // "jwt", "apiKey"
	Scopes []string // all required
}

// RouteRateLimit is a GCRA limit: Rate requests Per period, bucket size Burst.
type RouteRateLimit struct {
	Key   string // ip, subject, apiKey, route, header:NAME, claim:NAME
	Rate  int
	Per   time.Duration
	Burst int
}
