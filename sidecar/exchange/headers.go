package exchange

import (
	"net/http"
	"net/textproto"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/policy"
)

// HeaderNames maps the header names decisions use ("X-Request-ID",
// "RateLimit-Limit") to their canonical form ("X-Request-Id",
// "Ratelimit-Limit"). Built once per policy and read-only after, it spares
// the hot path canonicalising (and allocating) the same dozen names on every
// request. Names it does not know are canonicalised as usual.
type HeaderNames map[string]string

// knownHeaders are the names the engine itself writes, whatever the policy.
var knownHeaders = []string{
	"Retry-After", "WWW-Authenticate", "Vary",
	"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
	"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
	"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
	"Access-Control-Allow-Methods", "Access-Control-Expose-Headers", "Access-Control-Max-Age",
	"Content-Security-Policy", "Cross-Origin-Opener-Policy", "Cross-Origin-Resource-Policy",
	"Permissions-Policy", "Referrer-Policy", "Strict-Transport-Security",
	"X-Content-Type-Options", "X-Frame-Options",
}

// NewHeaderNames returns the names of p's decisions.
func NewHeaderNames(p *policy.Policy) HeaderNames {
	h := HeaderNames{}
	add := func(name string) { h[name] = textproto.CanonicalMIMEHeaderKey(name) }
	for _, n := range knownHeaders {
		add(n)
	}
	s := &p.Spec
	add(s.RequestID.Header)
	for _, n := range s.RequestID.AlsoHeaders {
		add(n)
	}
	for _, pr := range s.Auth.JWT.Providers {
		for _, fc := range pr.ForwardClaims {
			add(fc.Header)
		}
	}
	for n := range s.SecurityHeaders.Custom {
		add(n)
	}
	return h
}

// Canonical is name in canonical form.
func (h HeaderNames) Canonical(name string) string {
	if c, ok := h[name]; ok {
		return c
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// SetResponseHeaders is edge.Decision.SetResponseHeaders with cached
// canonical names (TestHeaderHelpersMatchDecision holds them equal).
func (h HeaderNames) SetResponseHeaders(dst http.Header, d *edge.Decision) {
	for _, kv := range d.ResponseHeaders {
		dst[h.Canonical(kv[0])] = []string{kv[1]}
	}
	for _, kv := range d.SecurityHeaders {
		dst[h.Canonical(kv[0])] = []string{kv[1]}
	}
}

// DropResponseHeaders deletes from src every header the decision sets, so
// that the decision's values replace the upstream's.
func (h HeaderNames) DropResponseHeaders(src http.Header, d *edge.Decision) {
	for _, kv := range d.ResponseHeaders {
		delete(src, h.Canonical(kv[0]))
	}
	for _, kv := range d.SecurityHeaders {
		delete(src, h.Canonical(kv[0]))
	}
}

// SetUpstreamHeaders is edge.Decision.SetUpstreamHeaders with cached
// canonical names.
func (h HeaderNames) SetUpstreamHeaders(dst http.Header, d *edge.Decision) {
	for name := range dst {
		if d.Strips(name) {
			delete(dst, name)
		}
	}
	for _, kv := range d.UpstreamHeaders {
		dst[h.Canonical(kv[0])] = []string{kv[1]}
	}
}
