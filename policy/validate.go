package policy

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// validate checks the rules that span fields, on a document that decoded
// without error (each field on its own is the decoder's: policy.go's tags),
// and applies the defaults that depend on other fields.
func (d *decoder) validate(p *Policy) {
	s := &p.Spec
	d.validateAuth(&s.Auth)
	if t := s.TokenIssuer; t != nil {
		d.validateIssuer(t)
	}
	switch st := s.RateLimit.Store; {
	case st.Type == "memory" && st.URL != "":
		d.fail("spec.rateLimit.store.url", "a memory store takes no url")
	case st.Type == "redis" && !strings.HasPrefix(st.URL, "redis://") && !strings.HasPrefix(st.URL, "rediss://") && !strings.HasPrefix(st.URL, "unix://"):
		d.fail("spec.rateLimit.store.url", "a redis store needs a redis://, rediss:// or unix:// url")
	}
	if s.CORS != nil {
		d.validateOrigins(s.CORS)
	}
	d.validateRoutes(s)
}

func (d *decoder) validateAuth(a *Auth) {
	names := map[string]bool{}
	for i := 0; i < len(a.JWT.Providers); i++ {
		p := &a.JWT.Providers[i]
		path := index("spec.auth.jwt.providers", i)
		if names[p.Name] {
			d.fail(join(path, "name"), "duplicate provider name %q", p.Name)
		}
		names[p.Name] = true
		hmac, asym := false, false
		for j := 0; j < len(p.Algorithms); j++ {
			if strings.HasPrefix(p.Algorithms[j], "HS") {
				hmac = true
			} else {
				asym = true
			}
		}
		switch {
		case hmac && p.Secret == nil:
			d.fail(join(path, "algorithms"), "HS* algorithms need a shared secret (secret: {file|env|value})")
		case !hmac && p.Secret != nil:
			d.fail(join(path, "secret"), "a shared secret is used only with HS* algorithms")
		}
		if s := p.Secret; s != nil {
			d.exactlyOne(join(path, "secret"), "exactly one of file, env or value is required", s.File, s.Env, s.Value)
		}
		if asym && p.JWKS == nil {
			d.fail(join(path, "jwks"), "is required for %s", strings.Join(p.Algorithms, ", "))
		}
		if k := p.JWKS; k != nil {
			d.keySource(join(path, "jwks"), k)
			if k.URL != "" && k.Refresh == 0 {
				k.Refresh = DefaultJWKSRefresh
			}
		}
	}
	if a.APIKeys != nil {
		ids := map[string]bool{}
		for i := 0; i < len(a.APIKeys.Keys); i++ {
			if id := a.APIKeys.Keys[i].ID; ids[id] {
				d.fail(index("spec.auth.apiKeys.keys", i)+".id", "duplicate key id %q", id)
			}
			ids[a.APIKeys.Keys[i].ID] = true
		}
	}
}

// keySource checks that a key set comes from exactly one place, and that
// only a URL may be waited for. It reports whether the first holds.
func (d *decoder) keySource(path string, k *KeySource) bool {
	if k.ReadyWithoutKeys && k.URL == "" {
		d.fail(join(path, "readyWithoutKeys"), "applies to url key sets only (file and inline keys are loaded at start)")
	}
	return d.exactlyOne(path, "exactly one of file, url or inline is required", k.File, k.URL, k.Inline)
}

func (d *decoder) exactlyOne(path, msg string, values ...string) bool {
	set := 0
	for _, v := range values {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		d.fail(path, "%s", msg)
	}
	return set == 1
}

func (d *decoder) validateIssuer(t *TokenIssuer) {
	const path = "spec.tokenIssuer"
	// Without a signing key the issuer makes one at start.
	if d.at[path+".signingKey"] != nil && d.keySource(path+".signingKey", &t.SigningKey) && t.SigningKey.URL != "" {
		d.fail(path+".signingKey", "a signing key is read from a file or inline PEM, not a URL")
	}
	d.unique(t.Users, path+".users", "username", "user")
	d.unique(t.Clients, path+".clients", "id", "client")
}

// unique refuses a second principal of the same name.
func (d *decoder) unique(list []Principal, path, key, noun string) {
	seen := map[string]bool{}
	for i := 0; i < len(list); i++ {
		if seen[list[i].Name] {
			d.fail(join(index(path, i), key), "duplicate %s %q", noun, list[i].Name)
		}
		seen[list[i].Name] = true
	}
}

func (d *decoder) validateOrigins(c *CORS) {
	const path = "spec.cors.allowOrigins"
	if len(c.AllowOrigins) == 0 {
		d.fail(path, "at least one origin is required")
	}
	for i, o := range c.AllowOrigins {
		p := index(path, i)
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
		case !validOriginPattern(o):
			d.fail(p, "invalid origin %q (use scheme://host[:port] or scheme://*.domain[:port])", o)
		}
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
		if names[r.Name] {
			d.fail(join(path, "name"), "duplicate route name %q", r.Name)
		}
		names[r.Name] = true
		if (r.Match.Path == "") == (r.Match.PathPrefix == "") {
			d.fail(join(path, "match"), "exactly one of path or pathPrefix is required")
		}
		for _, mp := range []string{r.Match.Path, r.Match.PathPrefix} {
			if mp != "" && !cleanPath(mp) {
				d.fail(join(path, "match"), "path %q must start with / and be normalised (no //, . or .. segments, no %%-escapes)", mp)
			} else if strings.Contains(mp, ";") {
				d.fail(join(path, "match"), "path %q has a ';' path parameter, which no request path is matched with (spec.paths.allowParameters)", mp)
			}
		}
		if !r.Auth.None {
			d.validateRouteAuth(s, r, path, configured)
		}
		if rl := r.RateLimit; rl != nil {
			d.rateBounds(path, rl)
			if rl.Burst == 0 {
				rl.Burst = rl.Rate
			}
			if (rl.Key == "subject" || rl.Key == "apiKey" || strings.HasPrefix(rl.Key, "claim:")) && r.Auth.None {
				d.fail(join(path, "rateLimit.key"), "key %q needs an authenticated route", rl.Key)
			}
		}
	}
}

// validateRouteAuth checks the credentials a route takes against those the
// policy configures; a route that names none takes every configured kind
// (fail closed).
func (d *decoder) validateRouteAuth(s *Spec, r *Route, path string, configured []string) {
	if r.Auth.AnyOf == nil && d.at[join(path, "auth")] == nil {
		r.Auth.AnyOf = append([]string(nil), configured...)
		if len(configured) == 0 {
			d.fail(path, "route needs credentials but no auth method is configured (write auth: none for a public route)")
		}
	} else if len(r.Auth.AnyOf) == 0 {
		d.fail(join(path, "auth.anyOf"), "at least one of jwt or apiKey is required")
	}
	for j, m := range r.Auth.AnyOf {
		p := index(join(path, "auth.anyOf"), j)
		switch {
		case m == "jwt" && len(s.Auth.JWT.Providers) == 0:
			d.fail(p, "jwt is not configured (spec.auth.jwt.providers)")
		case m == "apiKey" && s.Auth.APIKeys == nil:
			d.fail(p, "apiKey is not configured (spec.auth.apiKeys)")
		case m != "jwt" && m != "apiKey":
			d.fail(p, "unknown auth method %q (use jwt or apiKey)", m)
		}
	}
}

// maxBucketMicros is the longest a rate-limit bucket may take to refill
// (burst × per/rate): 100 years, so that the limiters' arithmetic in
// microseconds since 1970 stays exact in float64 (Redis's Lua numbers).
const maxBucketMicros = int64(100 * 365.25 * 24 * 3600 * 1e6)

// rateBounds refuses limits the rate limiters cannot represent: they count
// time in whole microseconds per request, so more than one request per
// microsecond, or a bucket that refills over more than a century, would be
// refused at run time on every request (fail closed) — better here, with a
// position.
func (d *decoder) rateBounds(path string, rl *RouteRateLimit) {
	perMicros := int64(rl.Per / time.Microsecond)
	if perMicros < int64(rl.Rate) {
		d.fail(join(path, "rateLimit.rate"), "%d requests per %s is more than one per microsecond, the limiters' resolution", rl.Rate, rl.Per)
		return
	}
	burst := int64(rl.Burst)
	if burst <= 0 {
		burst = int64(rl.Rate)
	}
	if burst > maxBucketMicros/(perMicros/int64(rl.Rate)) {
		at := join(path, "rateLimit.burst")
		if d.at[at] == nil {
			at = join(path, "rateLimit.rate") // the burst is the rate's
		}
		d.errorf(d.at[at], join(path, "rateLimit.burst"), "a bucket of %d refilling at %d per %s takes more than 100 years to refill", burst, rl.Rate, rl.Per)
	}
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
	routes := " routes)"
	if len(p.Spec.Routes) == 1 {
		routes = " route)"
	}
	return p.Metadata.Name + "@" + h + " (" + strconv.Itoa(len(p.Spec.Routes)) + routes
}
