package policy

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of policy v1. Every one is documented in docs/policy.md.
const (
	DefaultUpstreamTimeout     = 30 * time.Second
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
	DefaultConsecutiveFailures = 5
	DefaultOpenFor             = 60 * time.Second
	DefaultHalfOpenRequests    = 3
	DefaultRatioWindow         = 10 * time.Second
	DefaultRatioMinRequests    = 20
	DefaultMaxBodyBytes        = 1 << 20
	DefaultMaxHeaderBytes      = 32 << 10
	DefaultBodyTimeout         = 30 * time.Second
)

// DefaultAlgorithms are the JWT algorithms a provider accepts when it names none.
var defaultAlgorithms = []string{"ES256", "RS256", "EdDSA"}

// validate applies defaults and checks everything that spans fields.
func (d *decoder) validate(p *Policy) {
	s := &p.Spec

	if s.Upstream.URL != "" {
		u, err := url.Parse(s.Upstream.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.fail("spec.upstream.url", "must be an absolute http or https URL, got %q", s.Upstream.URL)
		}
	}
	if s.Upstream.Timeout == 0 {
		s.Upstream.Timeout = DefaultUpstreamTimeout
	}

	if len(s.ClientIP.Headers) == 0 {
		s.ClientIP.Headers = []string{"X-Forwarded-For"}
	}
	for i := 0; i < len(s.ClientIP.Headers); i++ {
		h := s.ClientIP.Headers[i]
		switch strings.ToLower(h) {
		case "x-forwarded-for":
			s.ClientIP.Headers[i] = "X-Forwarded-For"
		case "forwarded":
			s.ClientIP.Headers[i] = "Forwarded"
		case "x-real-ip":
			s.ClientIP.Headers[i] = "X-Real-IP"
		default:
			d.fail(index("spec.clientIP.headers", i), "unknown client address header %q (use X-Forwarded-For, Forwarded or X-Real-IP)", h)
		}
	}

	if s.RequestID.Header == "" {
		s.RequestID.Header = DefaultRequestIDHeader
	}
	d.headerName(s.RequestID.Header, "spec.requestID.header")
	for i := 0; i < len(s.RequestID.AlsoHeaders); i++ {
		d.headerName(s.RequestID.AlsoHeaders[i], index("spec.requestID.alsoHeaders", i))
	}
	if s.RequestID.Format == "" {
		s.RequestID.Format = DefaultRequestIDFormat
	}
	if s.RequestID.Format != "uuidv7" && s.RequestID.Format != "uuidv4" {
		d.fail("spec.requestID.format", "unknown format %q (use uuidv7 or uuidv4)", s.RequestID.Format)
	}

	d.validateAuth(&s.Auth)
	if s.TokenIssuer != nil {
		d.validateIssuer(s.TokenIssuer)
	}

	st := &s.RateLimit.Store
	if st.Type == "" {
		st.Type = "memory"
	}
	switch st.Type {
	case "memory":
		if st.URL != "" {
			d.fail("spec.rateLimit.store.url", "a memory store takes no url")
		}
	case "redis":
		if !strings.HasPrefix(st.URL, "redis://") && !strings.HasPrefix(st.URL, "rediss://") && !strings.HasPrefix(st.URL, "unix://") {
			d.fail("spec.rateLimit.store.url", "a redis store needs a redis://, rediss:// or unix:// url")
		}
	default:
		d.fail("spec.rateLimit.store.type", "unknown store %q (use memory or redis)", st.Type)
	}
	if st.OnError == "" {
		st.OnError = "local"
	}
	if st.OnError != "local" && st.OnError != "deny" && st.OnError != "allow" {
		d.fail("spec.rateLimit.store.onError", "unknown mode %q (use local, deny or allow)", st.OnError)
	}
	if s.RateLimit.Headers == "" {
		s.RateLimit.Headers = "ietf"
	}
	switch s.RateLimit.Headers {
	case "ietf", "legacy", "both", "none":
	default:
		d.fail("spec.rateLimit.headers", "unknown header style %q (use ietf, legacy, both or none)", s.RateLimit.Headers)
	}

	cb := &s.CircuitBreaker
	if cb.ConsecutiveFailures < 0 {
		cb.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if cb.FailureRatio != nil {
		if cb.FailureRatio.Window == 0 {
			cb.FailureRatio.Window = DefaultRatioWindow
		}
		if cb.FailureRatio.MinRequests == 0 {
			cb.FailureRatio.MinRequests = DefaultRatioMinRequests
		}
	}
	if cb.OpenFor == 0 {
		cb.OpenFor = DefaultOpenFor
	}
	if cb.HalfOpenRequests == 0 {
		cb.HalfOpenRequests = DefaultHalfOpenRequests
	}
	if d.at["spec.circuitBreaker.failOn"] == nil {
		cb.FailOn = FailOn{Statuses: []int{502, 503, 504}, Timeout: true, Connection: true}
	}

	if s.CORS != nil {
		d.validateCORS(s.CORS)
	}

	switch {
	case s.SecurityHeaders.Custom != nil:
		for name, value := range s.SecurityHeaders.Custom {
			d.headerName(name, join("spec.securityHeaders", name))
			if strings.ContainsAny(value, "\r\n\x00") {
				d.fail(join("spec.securityHeaders", name), "header values must not contain CR, LF or NUL")
			}
		}
	case s.SecurityHeaders.Preset == "":
		s.SecurityHeaders.Preset = "strict"
	case s.SecurityHeaders.Preset != "strict" && s.SecurityHeaders.Preset != "none":
		d.fail("spec.securityHeaders", "unknown preset %q (use strict, none, or a map of header: value)", s.SecurityHeaders.Preset)
	}

	if s.Limits.MaxBodyBytes == 0 {
		s.Limits.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if s.Limits.MaxHeaderBytes == 0 {
		s.Limits.MaxHeaderBytes = DefaultMaxHeaderBytes
	}

	d.validateRoutes(s)
}

func (d *decoder) headerName(name, path string) {
	if !validToken(name) {
		d.fail(path, "invalid header name %q", name)
	}
}

// validToken reports whether s is an RFC 9110 token (header names, methods).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func (d *decoder) validateAuth(a *Auth) {
	names := map[string]bool{}
	for i := 0; i < len(a.JWT.Providers); i++ {
		p := &a.JWT.Providers[i]
		path := index("spec.auth.jwt.providers", i)
		if p.Name == "" {
			d.fail(join(path, "name"), "is required")
		} else if names[p.Name] {
			d.fail(join(path, "name"), "duplicate provider name %q", p.Name)
		}
		names[p.Name] = true
		if p.Issuer == "" {
			d.fail(join(path, "issuer"), "is required")
		}
		if len(p.Audiences) == 0 {
			d.fail(join(path, "audiences"), "at least one audience is required: a token minted for another service must not pass")
		}
		if len(p.Algorithms) == 0 {
			p.Algorithms = append([]string(nil), defaultAlgorithms...)
		}
		hmac, asym := false, false
		for j := 0; j < len(p.Algorithms); j++ {
			if strings.HasPrefix(p.Algorithms[j], "HS") {
				hmac = true
			} else {
				asym = true
			}
		}
		if hmac && p.Secret == nil {
			d.fail(join(path, "algorithms"), "HS* algorithms need a shared secret (secret: {file|env|value})")
		}
		if !hmac && p.Secret != nil {
			d.fail(join(path, "secret"), "a shared secret is used only with HS* algorithms")
		}
		if asym && p.JWKS == nil {
			d.fail(join(path, "jwks"), "is required for %s", strings.Join(p.Algorithms, ", "))
		}
		if p.JWKS != nil && p.JWKS.URL != "" && p.JWKS.Refresh == 0 {
			p.JWKS.Refresh = DefaultJWKSRefresh
		}
		if p.ClockSkew < 0 {
			p.ClockSkew = DefaultClockSkew
		}
		if p.ClockSkew > MaxClockSkew {
			d.fail(join(path, "clockSkew"), "at most %s", MaxClockSkew)
		}
		if p.ScopeClaim == "" {
			p.ScopeClaim = DefaultScopeClaim
		}
		for j := 0; j < len(p.ForwardClaims); j++ {
			fc := p.ForwardClaims[j]
			d.headerName(fc.Header, join(join(path, "forwardClaims"), fc.Claim))
		}
	}
	if a.APIKeys != nil {
		if a.APIKeys.Header == "" {
			a.APIKeys.Header = DefaultAPIKeyHeader
		}
		d.headerName(a.APIKeys.Header, "spec.auth.apiKeys.header")
		if len(a.APIKeys.Keys) == 0 {
			d.fail("spec.auth.apiKeys.keys", "at least one key is required")
		}
		ids := map[string]bool{}
		for i := 0; i < len(a.APIKeys.Keys); i++ {
			id := a.APIKeys.Keys[i].ID
			path := index("spec.auth.apiKeys.keys", i) + ".id"
			if id == "" {
				d.fail(path, "is required")
			} else if ids[id] {
				d.fail(path, "duplicate key id %q", id)
			}
			ids[id] = true
		}
	}
}

func (d *decoder) validateIssuer(t *TokenIssuer) {
	const path = "spec.tokenIssuer"
	if t.Path == "" {
		t.Path = DefaultTokenPath
	}
	if !strings.HasPrefix(t.Path, "/") {
		d.fail(path+".path", "must start with /")
	}
	if t.Issuer == "" {
		d.fail(path+".issuer", "is required")
	}
	if t.Audience == "" {
		d.fail(path+".audience", "is required")
	}
	if t.AccessTTL == 0 {
		t.AccessTTL = DefaultAccessTTL
	}
	if t.RefreshTTL == 0 {
		t.RefreshTTL = DefaultRefreshTTL
	}
	if t.SigningKey.URL != "" {
		d.fail(path+".signingKey", "a signing key is read from a file or inline PEM, not a URL")
	}
	seen := map[string]bool{}
	for i := 0; i < len(t.Users); i++ {
		if seen[t.Users[i].Name] {
			d.fail(index(path+".users", i)+".username", "duplicate user %q", t.Users[i].Name)
		}
		seen[t.Users[i].Name] = true
	}
	seen = map[string]bool{}
	for i := 0; i < len(t.Clients); i++ {
		if seen[t.Clients[i].Name] {
			d.fail(index(path+".clients", i)+".id", "duplicate client %q", t.Clients[i].Name)
		}
		seen[t.Clients[i].Name] = true
	}
}

func (d *decoder) validateCORS(c *CORS) {
	const path = "spec.cors"
	if len(c.AllowOrigins) == 0 {
		d.fail(path+".allowOrigins", "at least one origin is required")
	}
	for i := 0; i < len(c.AllowOrigins); i++ {
		o := c.AllowOrigins[i]
		p := index(path+".allowOrigins", i)
		switch {
		case o == "*":
			if len(c.AllowOrigins) > 1 {
				d.fail(p, `"*" must be the only origin`)
			}
			if c.AllowCredentials {
				d.fail(p, `"*" cannot be combined with allowCredentials (browsers refuse it)`)
			}
		case o == "null":
			d.fail(p, `"null" is never an allowed origin: sandboxed frames and file: pages all send it`)
		default:
			if !validOriginPattern(o) {
				d.fail(p, "invalid origin %q (use scheme://host[:port] or scheme://*.domain[:port])", o)
			}
		}
	}
	for i := 0; i < len(c.AllowMethods); i++ {
		if !validToken(c.AllowMethods[i]) || strings.ToUpper(c.AllowMethods[i]) != c.AllowMethods[i] {
			d.fail(index(path+".allowMethods", i), "invalid method %q (upper-case token)", c.AllowMethods[i])
		}
	}
	for i := 0; i < len(c.AllowHeaders); i++ {
		d.headerName(c.AllowHeaders[i], index(path+".allowHeaders", i))
	}
	for i := 0; i < len(c.ExposeHeaders); i++ {
		d.headerName(c.ExposeHeaders[i], index(path+".exposeHeaders", i))
	}
}

func validOriginPattern(o string) bool {
	scheme, host, ok := strings.Cut(o, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return false
	}
	host = strings.TrimPrefix(host, "*.")
	if host == "" || strings.ContainsAny(host, "*/?#@ ") {
		return false
	}
	u, err := url.Parse(scheme + "://" + host)
	return err == nil && u.Hostname() != ""
}

func (d *decoder) validateRoutes(s *Spec) {
	if len(s.Routes) == 0 {
		d.fail("spec.routes", "at least one route is required")
	}
	var configured []string
	if len(s.Auth.JWT.Providers) > 0 {
		configured = append(configured, "jwt")
	}
	if s.Auth.APIKeys != nil {
		configured = append(configured, "apiKey")
	}
	names := map[string]bool{}
	for i := 0; i < len(s.Routes); i++ {
		r := &s.Routes[i]
		path := index("spec.routes", i)
		if r.Name != "" && names[r.Name] {
			d.fail(join(path, "name"), "duplicate route name %q", r.Name)
		}
		names[r.Name] = true
		for _, mp := range []string{r.Match.Path, r.Match.PathPrefix} {
			if mp != "" && !cleanPath(mp) {
				d.fail(join(path, "match"), "path %q must start with / and be normalised (no //, . or .. segments, no %%-escapes)", mp)
			} else if strings.Contains(mp, ";") {
				d.fail(join(path, "match"), "path %q has a ';' path parameter, which no request path is matched with (spec.paths.allowParameters)", mp)
			}
		}
		if r.BodyTimeout == 0 {
			r.BodyTimeout = DefaultBodyTimeout
		}
		for j := 0; j < len(r.Match.Methods); j++ {
			m := r.Match.Methods[j]
			if !validToken(m) || strings.ToUpper(m) != m {
				d.fail(index(join(path, "match.methods"), j), "invalid method %q (upper-case token such as GET)", m)
			}
		}
		if !r.Auth.None {
			if r.Auth.AnyOf == nil && d.at[join(path, "auth")] == nil {
				r.Auth.AnyOf = append([]string(nil), configured...)
				if len(configured) == 0 {
					d.fail(path, "route needs credentials but no auth method is configured (write auth: none for a public route)")
				}
			} else if len(r.Auth.AnyOf) == 0 {
				d.fail(join(path, "auth.anyOf"), "at least one of jwt or apiKey is required")
			}
			for j := 0; j < len(r.Auth.AnyOf); j++ {
				m := r.Auth.AnyOf[j]
				p := index(join(path, "auth.anyOf"), j)
				switch m {
				case "jwt":
					if len(s.Auth.JWT.Providers) == 0 {
						d.fail(p, "jwt is not configured (spec.auth.jwt.providers)")
					}
				case "apiKey":
					if s.Auth.APIKeys == nil {
						d.fail(p, "apiKey is not configured (spec.auth.apiKeys)")
					}
				default:
					d.fail(p, "unknown auth method %q (use jwt or apiKey)", m)
				}
			}
		}
		if rl := r.RateLimit; rl != nil {
			if rl.Burst == 0 {
				rl.Burst = rl.Rate
			}
			if !validRateKey(rl.Key) {
				d.fail(join(path, "rateLimit.key"), "unknown key %q (use ip, subject, apiKey, route, header:NAME or claim:NAME)", rl.Key)
			}
			if (rl.Key == "subject" || rl.Key == "apiKey" || strings.HasPrefix(rl.Key, "claim:")) && r.Auth.None {
				d.fail(join(path, "rateLimit.key"), "key %q needs an authenticated route", rl.Key)
			}
		}
	}
}

func validRateKey(k string) bool {
	switch k {
	case "ip", "subject", "apiKey", "route":
		return true
	}
	if strings.HasPrefix(k, "header:") {
		return validToken(k[len("header:"):])
	}
	if strings.HasPrefix(k, "claim:") {
		return len(k) > len("claim:")
	}
	return false
}

// cleanPath reports whether a route path is already in normalised form, so
// that it can match normalised request paths.
func cleanPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "%\\?#") || strings.Contains(p, "//") {
		return false
	}
	segs := strings.Split(p, "/")
	for i := 0; i < len(segs); i++ {
		if segs[i] == "." || segs[i] == ".." {
			return false
		}
	}
	return true
}

// String renders a duration-free summary used in logs: name@hash-prefix.
func (p *Policy) String() string {
	h := p.Hash
	if len(h) > 12 {
		h = h[:12]
	}
	return p.Metadata.Name + "@" + h + " (" + strconv.Itoa(len(p.Spec.Routes)) + " routes)"
}
