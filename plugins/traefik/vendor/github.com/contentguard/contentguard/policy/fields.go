package policy

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The decoders (decode=) and checks (check=) the tags in policy.go name.
// A decoder gets the field's node (nil when the key is absent) and path and
// returns the value; a check gets them and the decoded value, after the
// defaults, unless decoding it failed. Both report with errorf at the node,
// or fail at the path (the nearest node read on the way there).

func (d *decoder) apiVersion(_ *Node, path, v string) {
	if v != APIVersion {
		d.fail(path, "must be %q", APIVersion)
	}
}

func (d *decoder) kind(_ *Node, path, v string) {
	if v != KindEdgePolicy {
		d.fail(path, "must be %q", KindEdgePolicy)
	}
}

func (d *decoder) routes(_ *Node, path string, v []Route) {
	if len(v) == 0 {
		d.fail(path, "at least one route is required")
	}
}

func (d *decoder) upstreamURL(_ *Node, path, v string) {
	if v == "" {
		return
	}
	if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.fail(path, "must be an absolute http or https URL, got %q", v)
	}
}

func (d *decoder) prefixes(n *Node, path string) []netip.Prefix {
	var out []netip.Prefix
	for i, v := range d.strings(n, path) {
		pfx, err := parsePrefix(v)
		if err != nil {
			d.fail(index(path, i), "%v", err)
			continue
		}
		out = append(out, pfx)
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid address or CIDR %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// clientIPHeaders reads the headers the client address is taken from, in
// their canonical spelling; none means X-Forwarded-For.
func (d *decoder) clientIPHeaders(n *Node, path string) []string {
	hs := d.strings(n, path)
	if len(hs) == 0 {
		return []string{DefaultClientIPHeader}
	}
	for i := 0; i < len(hs); i++ {
		switch strings.ToLower(hs[i]) {
		case "x-forwarded-for":
			hs[i] = "X-Forwarded-For"
		case "forwarded":
			hs[i] = "Forwarded"
		case "x-real-ip":
			hs[i] = "X-Real-IP"
		default:
			d.fail(index(path, i), "unknown client address header %q (use X-Forwarded-For, Forwarded or X-Real-IP)", hs[i])
		}
	}
	return hs
}

func (d *decoder) headerName(_ *Node, path, name string) {
	if !validToken(name) {
		d.fail(path, "invalid header name %q", name)
	}
}

func (d *decoder) headerNames(n *Node, path string, names []string) {
	for i := 0; i < len(names); i++ {
		d.headerName(n, index(path, i), names[i])
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

func (d *decoder) methods(_ *Node, path string, ms []string) {
	for i := 0; i < len(ms); i++ {
		if !validToken(ms[i]) || strings.ToUpper(ms[i]) != ms[i] {
			d.fail(index(path, i), "invalid method %q (upper-case token such as GET)", ms[i])
		}
	}
}

func (d *decoder) audiences(_ *Node, path string, v []string) {
	if len(v) == 0 {
		d.fail(path, "at least one audience is required: a token minted for another service must not pass")
	}
}

func (d *decoder) algorithms(_ *Node, path string, algs []string) {
	for i := 0; i < len(algs); i++ {
		switch algs[i] {
		case "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA", "HS256", "HS384", "HS512":
			continue
		}
		msg := "unknown algorithm %q (allowed: ES256 ES384 ES512 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA HS256 HS384 HS512)"
		if strings.EqualFold(algs[i], "none") {
			msg = "algorithm %q is never allowed: unsigned tokens prove nothing"
		}
		d.fail(index(path, i), msg, algs[i])
	}
}

func (d *decoder) clockSkew(_ *Node, path string, v time.Duration) {
	if v > MaxClockSkew {
		d.fail(path, "at most %s", MaxClockSkew)
	}
}

// forwardClaims reads claim: Header pairs, sorted by claim.
func (d *decoder) forwardClaims(n *Node, path string) []ClaimHeader {
	var out []ClaimHeader
	for claim, header := range d.stringMap(n, path) {
		out = append(out, ClaimHeader{Claim: claim, Header: header})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Claim < out[j].Claim })
	for i := 0; i < len(out); i++ {
		d.headerName(nil, join(path, out[i].Claim), out[i].Header)
	}
	return out
}

// inline reads a key set given in the policy: JSON text, or the JWKS
// written as YAML.
func (d *decoder) inline(n *Node, path string) string {
	if n != nil && n.Kind == Mapping {
		return n.JSON()
	}
	return d.str(n, path)
}

func (d *decoder) keyURL(_ *Node, path, v string) {
	if v != "" && !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://") {
		d.fail(path, "must be an http or https URL")
	}
}

func (d *decoder) apiKeys(_ *Node, path string, v []APIKey) {
	if len(v) == 0 {
		d.fail(path, "at least one key is required")
	}
}

// sha256 reads an API key's hash: 64 hex digits.
func (d *decoder) sha256(n *Node, path string) (sum [32]byte) {
	raw, err := hex.DecodeString(d.str(n, path))
	if err != nil || len(raw) != 32 {
		d.fail(path, "must be the 64 hex digits of the key's SHA-256")
	}
	copy(sum[:], raw)
	return sum
}

func (d *decoder) scopes(_ *Node, path string, v []string) {
	for i := 0; i < len(v); i++ {
		if !validScope(v[i]) {
			d.fail(index(path, i), "invalid scope %q: a scope is one token of printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)", v[i])
		}
	}
}

// validScope follows RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

func (d *decoder) tokenPath(_ *Node, path, v string) {
	if !strings.HasPrefix(v, "/") {
		d.fail(path, "must start with /")
	}
}

func (d *decoder) users(n *Node, path string) []Principal { return d.principals(n, path, "username") }

func (d *decoder) clients(n *Node, path string) []Principal { return d.principals(n, path, "id") }

// principals reads users (named by username) or clients (by id).
func (d *decoder) principals(n *Node, path, nameKey string) []Principal {
	var out []Principal
	for i, it := range d.list(n, path) {
		p := index(path, i)
		if !d.mapping(it, p, nameKey, "bcrypt", "scopes") {
			continue
		}
		pr := Principal{
			Name:   d.str(it.Get(nameKey), join(p, nameKey)),
			Bcrypt: d.str(it.Get("bcrypt"), join(p, "bcrypt")),
			Scopes: d.strings(it.Get("scopes"), join(p, "scopes")),
		}
		d.scopes(nil, join(p, "scopes"), pr.Scopes)
		if pr.Name == "" {
			d.errorf(it, join(p, nameKey), "is required")
		}
		if !strings.HasPrefix(pr.Bcrypt, "$2a$") && !strings.HasPrefix(pr.Bcrypt, "$2b$") && !strings.HasPrefix(pr.Bcrypt, "$2y$") {
			d.fail(join(p, "bcrypt"), "must be a bcrypt hash ($2a$, $2b$ or $2y$)")
		}
		out = append(out, pr)
	}
	return out
}

func (d *decoder) consecutiveFailures(_ *Node, path string, v int) {
	if v < 0 {
		d.fail(path, "must not be negative (0 turns it off)")
	}
}

func (d *decoder) halfOpenRequests(_ *Node, path string, v int) {
	if v < 1 {
		d.fail(path, "must be at least 1")
	}
}

func (d *decoder) ratio(_ *Node, path string, v float64) {
	if v <= 0 || v > 1 {
		d.fail(path, "must be in (0, 1]")
	}
}

func (d *decoder) notNegative(_ *Node, path string, v int) {
	if v < 0 {
		d.fail(path, "must not be negative")
	}
}

// failOn reads the outcomes that count as failures: 5xx statuses, timeout
// and connection; absent, 502, 503, 504 and both.
func (d *decoder) failOn(n *Node, path string) FailOn {
	if n == nil {
		return FailOn{Statuses: []int{502, 503, 504}, Timeout: true, Connection: true}
	}
	var f FailOn
	for i, it := range d.list(n, path) {
		p := index(path, i)
		switch {
		case it.Kind == Scalar && it.Tag == "int":
			code := d.integer(it, p)
			if code < 500 || code > 599 {
				d.errorf(it, p, "only 5xx statuses can count as failures, got %d", code)
			}
			f.Statuses = append(f.Statuses, code)
		case it.Kind == Scalar && it.Value == "timeout":
			f.Timeout = true
		case it.Kind == Scalar && it.Value == "connection":
			f.Connection = true
		default:
			d.errorf(it, p, "expected a 5xx status, timeout or connection, got %s", describe(it))
		}
	}
	return f
}

// securityHeaders reads a preset (strict, the default, or none) or a map
// of header: value.
func (d *decoder) securityHeaders(n *Node, path string) SecurityHeaders {
	if n != nil && n.Kind == Mapping {
		custom := d.stringMap(n, path)
		for name, value := range custom {
			d.headerName(nil, join(path, name), name)
			if strings.ContainsAny(value, "\r\n\x00") {
				d.fail(join(path, name), "header values must not contain CR, LF or NUL")
			}
		}
		return SecurityHeaders{Custom: custom}
	}
	s := SecurityHeaders{Preset: d.str(n, path)}
	switch s.Preset {
	case "":
		s.Preset = DefaultSecurityPreset
	case "strict", "none":
	default:
		d.fail(path, "unknown preset %q (use strict, none, or a map of header: value)", s.Preset)
	}
	return s
}

// routeAuth reads a route's auth: none, or the credentials it takes.
func (d *decoder) routeAuth(n *Node, path string) (a RouteAuth) {
	switch {
	case n == nil: // fail closed: credentials, of every configured kind (validate)
	case n.Kind == Scalar && n.Tag == "str" && n.Value == "none":
		a.None = true
	case n.Kind == Mapping:
		d.decodeRouteAuth(n, path, &a, keysOfRouteAuth)
	default:
		d.errorf(n, path, "expected none or a mapping with anyOf and scopes, got %s", describe(n))
	}
	return a
}

func (d *decoder) rateKey(_ *Node, path, k string) {
	valid := false
	switch { // one condition a case: Yaegi v0.16.1 matches only the first of a list here
	case k == "ip" || k == "subject" || k == "apiKey" || k == "route":
		valid = true
	case strings.HasPrefix(k, "header:"):
		valid = validToken(k[len("header:"):])
	case strings.HasPrefix(k, "claim:"):
		valid = len(k) > len("claim:")
	}
	if !valid {
		d.fail(path, "unknown key %q (use ip, subject, apiKey, route, header:NAME or claim:NAME)", k)
	}
}

// requests checks a number of requests of a rate limit, when given.
func (d *decoder) requests(n *Node, path string, v int) {
	if n != nil && v <= 0 {
		d.fail(path, "must be a positive number of requests, got %d", v)
	}
}
