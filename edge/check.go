package edge

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/edge/clientip"
	"github.com/contentguard/contentguard/edge/cors"
	"github.com/contentguard/contentguard/edge/problem"
	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/edge/urlpath"
	"github.com/contentguard/contentguard/internal/httpsyntax"
	"github.com/contentguard/contentguard/internal/requestid"
)

// Reason codes of decisions. They are stable: metrics, logs, conformance
// cases and clients read them.
const (
	ReasonAllowed            = "allowed"
	ReasonNoRoute            = "no_route"
	ReasonBadPath            = "bad_path"
	ReasonHeadersTooLarge    = "headers_too_large"
	ReasonBodyTooLarge       = "body_too_large"
	ReasonPreflight          = "cors_preflight"
	ReasonPreflightRejected  = "cors_rejected"
	ReasonCredentialsMissing = "credentials_missing"
	ReasonInvalidAPIKey      = "invalid_api_key"
	ReasonInsufficientScope  = "insufficient_scope"
	ReasonRateLimited        = "rate_limited"
	ReasonRateLimitError     = "rate_limit_unavailable"
	// ReasonRateLimitStoreDown: refused by onError: deny because the shared
	// rate-limit store is down, not because the client spent its budget.
	ReasonRateLimitStoreDown = "rate_limit_store_down"
	ReasonCircuitOpen        = "circuit_open"
	ReasonUpstreamTimeout    = "upstream_timeout"
	ReasonUpstreamError      = "upstream_unreachable"
	ReasonAmbiguousHeader    = "ambiguous_header"
	ReasonUpgradeRefused     = "upgrade_refused"
	// Reasons of exchanges the client failed (Outcome.ClientFault).
	ReasonClientTimeout = "client_timeout"
	ReasonMalformedBody = "malformed_body"
	ReasonClientClosed  = "client_closed"
	// ReasonOutcomeUnknown: the edge never saw the upstream's answer
	// (Outcome.Unknown).
	ReasonOutcomeUnknown = "outcome_unknown"
)

// StatusClientClosed is the status logged for a request whose client went
// away before its answer (NGINX's 499); it is never sent.
const StatusClientClosed = 499

// Check decides what to do with one request. It never blocks on the network
// except for a rate-limited JWKS refetch on an unknown key id, or a shared
// rate-limit store, both bounded by their own timeouts.
func (e *Engine) Check(ctx context.Context, r Request) Decision {
	d := Decision{ContentType: problem.ContentType, Upstream: e.upstream, Timeout: e.timeout}
	decide(e, ctx, &r, &d)
	return d
}

// decide is the decision, on d. It is written for the Traefik plugin, where
// Yaegi interprets it and what costs is not the work but the interpreter:
// calling an interpreted function allocates a slot for every local and
// temporary the function has, on whichever path, and calling an interpreted
// method first builds a reflect wrapper for it (about four function calls).
// So an allowed request takes one function of cheap steps and compiled
// standard-library calls; the engine's helpers are functions; the concern
// packages' methods are called as method expressions ((*T).M(x, …)), which
// Yaegi calls like functions; and everything that only a refusal or an
// explanation needs (detail texts, problems) is in functions of its own,
// off the path. See docs/traefik.md, "Why it is fast".
func decide(e *Engine, ctx context.Context, r *Request, d *Decision) {
	if r.Conn != nil && r.Explain {
		askConn(r)
	}
	if r.Upstream != "" {
		d.Upstream = r.Upstream
	}
	// One allocation backs both header lists: 12 response and 6 upstream
	// headers cover a typical decision without growing.
	headers := make([][2]string, 0, 18)
	d.ResponseHeaders = headers[0:0:12]
	d.UpstreamHeaders = headers[12:12:18]
	// Over TLS the strict preset adds Strict-Transport-Security. A Conn is
	// asked only when that changes the answer (each question may cost the
	// plane a round trip).
	d.SecurityHeaders = e.security
	if r.Conn == nil {
		if r.TLS {
			d.SecurityHeaders = e.securityTLS
		}
	} else if e.tlsMatters && r.Conn.TLS() {
		d.SecurityHeaders = e.securityTLS
	}
	d.names = e.names

	// Request ID first: every answer, including refusals, carries it. A
	// well-formed incoming ID is kept only when the policy trusts them.
	id := ""
	if e.trustID {
		if v := r.Header[e.idKey]; len(v) > 0 && requestid.Valid(v[0]) {
			id = v[0]
		}
	}
	kept := id != ""
	if !kept && e.ids != nil {
		id = (*requestid.V7Generator).New(e.ids)
	} else if !kept {
		id = requestid.NewV4()
	}
	d.RequestID = id
	d.ResponseHeaders = append(d.ResponseHeaders, [2]string{e.idHeader, id})
	d.UpstreamHeaders = append(d.UpstreamHeaders, [2]string{e.idHeader, id})
	for i := 0; i < len(e.alsoIDs); i++ {
		d.ResponseHeaders = append(d.ResponseHeaders, [2]string{e.alsoIDs[i], id})
		d.UpstreamHeaders = append(d.UpstreamHeaders, [2]string{e.alsoIDs[i], id})
	}
	if r.Explain {
		explainID(d, kept)
	}

	// Header and body limits, and header names that spell a framing field
	// with '_' for '-' (see framingLookalike), in one pass over the header.
	if r.HeadersTruncated {
		refuseTruncated(e, d, r)
		return
	}
	size := r.HeaderBytes
	if size <= 0 {
		size = len(r.Method) + len(r.Path) + len(r.RawQuery) + 12
	}
	ambiguous := ""
	for name, values := range r.Header {
		if r.HeaderBytes <= 0 {
			for i := 0; i < len(values); i++ {
				size += len(name) + len(values[i]) + 4
			}
		}
		// Only names as long as Content-Length or Transfer-Encoding can
		// spell them: the length spares a call for every other name.
		if (len(name) == 14 || len(name) == 17) && ambiguous == "" && framingLookalike(name) {
			ambiguous = name
		}
	}
	if int64(size) > e.maxHeader {
		refuseHeaderSize(e, d, r, size)
		return
	}
	if ambiguous != "" {
		refuseAmbiguous(e, d, r, ambiguous)
		return
	}
	if r.ContentLength > e.maxBody {
		refuseBodySize(e, d, r)
		return
	}
	if r.Explain {
		d.step("limits", "ok", "headers and declared body within limits")
	}

	path, ok := urlpath.Normalize(r.Path)
	if !ok {
		reject(e, d, r, http.StatusBadRequest, ReasonBadPath, "Bad Request", "the request path is not a valid, normalisable path")
		return
	}
	d.Path = path
	if r.PathAsIs && path != r.Path {
		refusePathAsIs(e, d, r)
		return
	}
	if !e.params && urlpath.HasParameter(path) {
		reject(e, d, r, http.StatusBadRequest, ReasonBadPath, "Bad Request",
			"the request path has a ';' path parameter, which upstreams disagree on (see spec.paths.allowParameters)")
		return
	}
	if r.Explain {
		explainPath(d, r)
	}

	// Only a request from an Origin, or a preflight (OPTIONS), has CORS
	// work: the others skip the call.
	if e.cors != nil && (r.Method == http.MethodOptions || len(r.Header["Origin"]) > 0) && applyCORS(e, d, r) {
		return // a preflight, answered or refused
	}

	// With a Conn the peer is asked for only if the rate-limit key needs it
	// (locate).
	if r.Conn == nil {
		d.ClientIP = (*clientip.Resolver).ClientIP(e.clientIP, r.Peer, r.Header)
		d.located = true
	}
	if r.Explain {
		explainClientIP(d, r)
	}

	rt := match(e, r.Method, path)
	if rt == nil {
		refuseNoRoute(e, d, r)
		return
	}
	d.Route = rt.name
	d.BodyTimeout = rt.bodyTimeout
	if r.Explain {
		explainRoute(e, d, r, rt)
	}

	// Headers that carry verified claims upstream are never taken from the
	// client, authenticated or not.
	d.StripHeaders = e.strip
	d.strips = e.strips
	if (len(r.Header["Upgrade"]) > 0 || len(r.Header["Http2-Settings"]) > 0) && !upgradeAllowed(e, d, r, rt) {
		return
	}
	if !rt.public {
		if !authenticate(e, ctx, d, r, rt) {
			return
		}
	} else if r.Explain {
		d.step("auth", "none", "public route")
	}

	if rt.limit != nil && !limit(e, ctx, d, r, rt) {
		return
	}

	if !r.DecideOnly {
		b := (*breaker.Registry).Get(e.breakers, d.Upstream)
		t, ok, wait := (*breaker.Breaker).Allow(b)
		if !ok {
			refuseCircuit(e, d, r, wait)
			return
		}
		d.ticket = t
		d.armed = true
		d.breaker = b
		if r.Explain {
			explainBreaker(d, b)
		}
	}

	d.Allow = true
	d.Reason = ReasonAllowed
	if e.observer != nil {
		e.observer.Decided(*d)
	}
}

// applyCORS answers a CORS preflight here, allowed or refused (true), and
// gives an actual request from an Origin its CORS headers.
func applyCORS(e *Engine, d *Decision, r *Request) bool {
	if !cors.IsPreflight(r.Method, r.Header) {
		if origin := r.Header["Origin"]; len(origin) > 0 && origin[0] != "" {
			d.ResponseHeaders = append(d.ResponseHeaders, (*cors.Policy).Actual(e.cors, origin[0])...)
		}
		return false
	}
	headers, ok := (*cors.Policy).Preflight(e.cors, r.Header)
	if !ok {
		reject(e, d, r, http.StatusForbidden, ReasonPreflightRejected, "Forbidden",
			"CORS preflight refused: origin, method or headers not allowed")
		return true
	}
	d.ResponseHeaders = append(d.ResponseHeaders, headers...)
	d.Status = http.StatusNoContent
	d.Reason = ReasonPreflight
	d.ContentType = ""
	if r.Explain {
		d.step("cors", "preflight", "answered at the edge, not forwarded")
	}
	if e.observer != nil {
		e.observer.Decided(*d)
	}
	return true
}

// authenticate verifies the route's credentials; it reports false when it
// has turned d into a refusal.
func authenticate(e *Engine, ctx context.Context, d *Decision, r *Request, rt *route) bool {
	failure := ReasonCredentialsMissing
	presented := false // any credential this route takes
	tokenSent := false // a bearer token, for WWW-Authenticate
	for i := 0; i < len(rt.anyOf) && d.AuthMethod == ""; i++ {
		kind := rt.anyOf[i]
		if kind == "jwt" && e.verifier != nil {
			// Credentials are singletons (see refuseRepeated), checked
			// where the engine reads them: no lookup of its own.
			values := r.Header["Authorization"]
			if len(values) > 1 || len(values) == 1 && strings.IndexByte(values[0], ',') >= 0 {
				refuseRepeated(e, d, r, "Authorization")
				return false
			}
			token, has := bearer(values)
			if has {
				presented = true
				tokenSent = true
				id, reason := (*auth.Verifier).Verify(e.verifier, ctx, token)
				if reason == auth.ReasonOK {
					d.identity = id
					d.Subject = id.Subject
					d.AuthMethod = "jwt"
				} else if failure == ReasonCredentialsMissing {
					failure = string(reason)
				}
			}
		} else if kind == "apiKey" && e.keyring != nil {
			v := r.Header[e.apiKeyHeader]
			if len(v) > 0 && (apiKeyRepeated(e, r, len(v)) || strings.IndexByte(v[0], ',') >= 0) {
				refuseRepeated(e, d, r, e.apiKeyHeader)
				return false
			}
			if len(v) > 0 && v[0] != "" {
				presented = true
				k, ok := (*auth.Keyring).Lookup(e.keyring, v[0])
				if ok {
					// The identities of keys are made once, in New.
					d.identity = e.keyIdentities[k.ID]
					d.Subject = "apikey:" + k.ID
					d.AuthMethod = "apiKey"
				} else if failure == ReasonCredentialsMissing {
					failure = ReasonInvalidAPIKey
				}
			}
		}
	}
	if d.AuthMethod == "" {
		refuseCredentials(e, d, r, rt, presented, tokenSent, failure)
		return false
	}
	if r.Explain {
		d.step("auth", d.AuthMethod, "subject "+d.Subject+", scopes "+strings.Join(d.identity.Scopes, " "))
	}
	scopes := d.identity.Scopes
	for i := 0; i < len(rt.scopes); i++ {
		found := false
		for j := 0; j < len(scopes) && !found; j++ {
			found = scopes[j] == rt.scopes[i]
		}
		if !found {
			refuseScope(e, d, r, rt, rt.scopes[i])
			return false
		}
	}
	forwardIdentity(e, d)
	return true
}

// forwardIdentity adds the verified claims that the policy forwards.
func forwardIdentity(e *Engine, d *Decision) {
	id := &d.identity
	claims := e.forward[id.Provider]
	if d.AuthMethod == "apiKey" {
		claims = e.keyForward
	}
	for i := 0; i < len(claims); i++ {
		v := ""
		switch claims[i].Claim {
		case "sub":
			v = id.Subject
		case "scope", "scp":
			v = id.ScopeText
			if v == "" {
				v = strings.Join(id.Scopes, " ")
			}
		default:
			v = claimString(id.Claims[claims[i].Claim])
		}
		// A valid header value (see headerValueFilter), inline.
		if v != "" && len(headerValueFilter.Replace(v)) == len(v) {
			d.UpstreamHeaders = append(d.UpstreamHeaders, [2]string{claims[i].Header, v})
		}
	}
}

// limit applies the route's rate limit; it reports false when it has
// turned d into a refusal.
func limit(e *Engine, ctx context.Context, d *Decision, r *Request, rt *route) bool {
	key := rateKey(e, d, r, rt)
	var res ratelimit.Result
	var err error
	if e.shared == nil {
		// The memory store itself, not through the Store interface: an
		// interface call costs Yaegi a method call's wrapper.
		res, err = (*ratelimit.Memory).Allow(e.local, ctx, key, *rt.limit, e.now())
	} else {
		res, err = e.shared.Allow(ctx, key, *rt.limit, e.now())
	}
	if err != nil {
		reject(e, d, r, http.StatusServiceUnavailable, ReasonRateLimitError, "Service Unavailable", "the rate-limit store is unavailable")
		return false
	}
	d.ResponseHeaders = ratelimit.AppendHeaders(d.ResponseHeaders, e.rateHeaders, res)
	if !res.Allowed {
		refuseRate(e, d, r, rt, res)
		return false
	}
	if r.Explain {
		d.step("rate-limit", "ok", "bucket "+key+": "+strconv.Itoa(res.Remaining)+" of "+strconv.Itoa(res.Limit)+" left")
	}
	return true
}

// rateKey builds the bucket key of a request. A key whose value is missing
// (no such header or claim) falls back to the client address, so that
// omitting a header cannot buy a fresh or shared-by-everyone bucket.
func rateKey(e *Engine, d *Decision, r *Request, rt *route) string {
	switch rt.rateKey {
	case "route":
		return rt.keyBase + "route"
	case "subject":
		if d.Subject != "" {
			return rt.keyBase + "sub:" + d.Subject
		}
	case "apiKey":
		if d.AuthMethod == "apiKey" {
			return rt.keyBase + "key:" + d.identity.Subject
		}
		if d.Subject != "" {
			return rt.keyBase + "sub:" + d.Subject
		}
	case "header":
		if v := r.Header.Get(rt.keyArg); v != "" {
			return rt.keyBase + "hdr:" + v
		}
	case "claim":
		if v := claimString(d.identity.Claims[rt.keyArg]); v != "" {
			return rt.keyBase + "claim:" + v
		}
	}
	// The address is resolved already unless the plane gave a Conn: no
	// call for the common case.
	if d.located {
		return ipKey(rt.keyBase, d.ClientIP)
	}
	return ipKey(rt.keyBase, locate(e, d, r))
}

// locate resolves the client's address from the peer and the forwarded
// headers the policy trusts, once per decision: eagerly for a Request with
// its Peer, on first use for one with a Conn.
func locate(e *Engine, d *Decision, r *Request) netip.Addr {
	if !d.located {
		peer := r.Peer
		if r.Conn != nil {
			peer = r.Conn.Peer()
		}
		d.ClientIP = (*clientip.Resolver).ClientIP(e.clientIP, peer, r.Header)
		d.located = true
	}
	return d.ClientIP
}

// ipKey is keyBase + "ip:" + ratelimit.IPKey(addr), built with one
// allocation: this key is on the path of nearly every request. An IPv4
// address, the common case, takes one compiled call to check and one to
// write.
func ipKey(keyBase string, addr netip.Addr) string {
	var buf [96]byte
	b := append(buf[:0], keyBase...)
	b = append(b, "ip:"...)
	if !addr.Is4() {
		addr = addr.Unmap().WithZone("")
		if addr.Is6() {
			p, _ := addr.Prefix(64)
			return string(p.AppendTo(b))
		}
		if !addr.IsValid() {
			return string(b)
		}
	}
	return string(addr.AppendTo(b))
}

// The refusals and explanations of decide, each a function of its own so
// that its texts cost nothing to a request that is allowed.

func refuseTruncated(e *Engine, d *Decision, r *Request) {
	reject(e, d, r, http.StatusRequestHeaderFieldsTooLarge, ReasonHeadersTooLarge,
		"Request Header Fields Too Large", "the request has more header fields than the edge can inspect")
}

func refuseHeaderSize(e *Engine, d *Decision, r *Request, n int) {
	reject(e, d, r, http.StatusRequestHeaderFieldsTooLarge, ReasonHeadersTooLarge,
		"Request Header Fields Too Large", "the request headers are "+strconv.Itoa(n)+" bytes; the limit is "+strconv.FormatInt(e.maxHeader, 10))
}

func refuseAmbiguous(e *Engine, d *Decision, r *Request, name string) {
	reject(e, d, r, http.StatusBadRequest, ReasonAmbiguousHeader, "Bad Request",
		"the header name "+strconv.Quote(name)+" spells a framing header with '_' for '-', which upstreams may read as that header")
}

// refuseRepeated refuses a request that carries a credential field the
// route reads more than once. Authorization and the API key's field are
// singletons (RFC 9110 §5.3): the engine would judge the first value,
// while an upstream may read the last, all of them joined, or (a
// CGI-style server, for the '_' spelling of the key's field) whichever its
// gateway put last — a credential the edge never checked. Envoy's
// ext_authz joins repeated fields with "," when it does not send them raw,
// and so do API Gateway's payload 2.0 events and any intermediary
// (RFC 9110 §5.3 lets it combine field lines): a credential value with a
// "," — which a bearer token (token68) never holds, and an API key must
// not (docs/policy.md) — is such a joined repeat and refused too, so that
// every plane gives the same answer.
func refuseRepeated(e *Engine, d *Decision, r *Request, name string) {
	reject(e, d, r, http.StatusBadRequest, ReasonAmbiguousHeader, "Bad Request",
		"the credential header "+strconv.Quote(name)+" is sent more than once (spellings with '_' for '-' count, and values joined with ','): the edge and the upstream could read different credentials")
}

// apiKeyRepeated reports whether the API key's field, present keys times,
// is there more than once when its '_' spellings are counted (looked up
// only beside the field itself: map lookups cost the Traefik plugin
// allocations).
func apiKeyRepeated(e *Engine, r *Request, keys int) bool {
	for i := 0; i < len(e.apiKeySpellings) && keys < 2; i++ {
		keys += len(r.Header[e.apiKeySpellings[i]])
	}
	return keys > 1
}

func refuseBodySize(e *Engine, d *Decision, r *Request) {
	reject(e, d, r, http.StatusRequestEntityTooLarge, ReasonBodyTooLarge,
		"Content Too Large", "the request body is "+strconv.FormatInt(r.ContentLength, 10)+" bytes; the limit is "+strconv.FormatInt(e.maxBody, 10))
}

func refusePathAsIs(e *Engine, d *Decision, r *Request) {
	reject(e, d, r, http.StatusBadRequest, ReasonBadPath, "Bad Request",
		"the path would reach the upstream as "+strconv.Quote(r.Path)+", which the edge reads as "+strconv.Quote(d.Path))
}

func refuseNoRoute(e *Engine, d *Decision, r *Request) {
	reject(e, d, r, http.StatusNotFound, ReasonNoRoute, "Not Found", "no route matches "+r.Method+" "+d.Path)
}

func refuseUpgrade(e *Engine, d *Decision, r *Request, rt *route) {
	reject(e, d, r, http.StatusForbidden, ReasonUpgradeRefused, "Forbidden",
		"route "+rt.name+" does not allow an upgrade to "+strconv.Quote(strings.Join(r.Header["Upgrade"], ", "))+
			" (only websocket, on a GET to a route with websocket: true)")
}

func refuseCredentials(e *Engine, d *Decision, r *Request, rt *route, presented, tokenSent bool, failure string) {
	detail := "credentials are missing: this route accepts " + rt.accepts
	if presented {
		detail = "credentials were rejected: " + strings.ReplaceAll(failure, "_", " ")
	}
	// RFC 6750 §3.1: an error code only when a token was sent; a request
	// without one (or with another kind of credential) is told the scheme,
	// not that its token is invalid.
	challenge := "Bearer"
	if tokenSent {
		challenge = `Bearer error="invalid_token", error_description="` + detail + `"`
	}
	d.ResponseHeaders = append(d.ResponseHeaders, [2]string{"WWW-Authenticate", challenge})
	reject(e, d, r, http.StatusUnauthorized, failure, "Unauthorized", detail)
}

func refuseScope(e *Engine, d *Decision, r *Request, rt *route, scope string) {
	d.ResponseHeaders = append(d.ResponseHeaders, [2]string{"WWW-Authenticate", rt.scopeHeader})
	reject(e, d, r, http.StatusForbidden, ReasonInsufficientScope, "Forbidden", "the credentials lack scope "+scope)
}

func refuseRate(e *Engine, d *Decision, r *Request, rt *route, res ratelimit.Result) {
	retry := strconv.FormatInt(ratelimit.RetryAfterSeconds(res.RetryAfter), 10)
	if e.rateHeaders == ratelimit.StyleNone {
		// Retry-After goes on every 429, whatever the header style.
		d.ResponseHeaders = append(d.ResponseHeaders, [2]string{"Retry-After", retry})
	}
	if res.StoreDown {
		reject(e, d, r, http.StatusTooManyRequests, ReasonRateLimitStoreDown, "Too Many Requests",
			"the shared rate-limit store is unavailable and the policy refuses without it (onError: deny); retry in "+retry+"s")
		return
	}
	reject(e, d, r, http.StatusTooManyRequests, ReasonRateLimited, "Too Many Requests",
		"rate limit of route "+rt.name+" exceeded; retry in "+retry+"s")
}

func refuseCircuit(e *Engine, d *Decision, r *Request, wait time.Duration) {
	retry := strconv.FormatInt(ratelimit.RetryAfterSeconds(wait), 10)
	d.ResponseHeaders = append(d.ResponseHeaders, [2]string{"Retry-After", retry})
	reject(e, d, r, http.StatusServiceUnavailable, ReasonCircuitOpen, "Service Unavailable",
		"the circuit breaker for "+d.Upstream+" is open; retry in "+retry+"s")
}

// askConn asks r's Conn for every fact up front, for an explanation, which
// shows them all (one assignment each: Yaegi loses the first of a, b = x,
// f(y)).
func askConn(r *Request) {
	c := r.Conn
	r.Peer = c.Peer()
	r.TLS = c.TLS()
	r.Conn = nil
}

// upgradeAllowed settles a request that asks for a protocol upgrade; it
// reports false when it has turned d into a refusal.
func upgradeAllowed(e *Engine, d *Decision, r *Request, rt *route) bool {
	if !upgrade(e, d, r, rt) {
		refuseUpgrade(e, d, r, rt)
		return false
	}
	if r.Explain {
		d.step("upgrade", d.Upgrade, "h2c and HTTP2-Settings are dropped; websocket only where the route allows it")
	}
	return true
}

func explainBreaker(d *Decision, b *breaker.Breaker) {
	d.step("circuit-breaker", b.State().String(), d.Upstream)
}

func explainID(d *Decision, kept bool) {
	how := "generated"
	if kept {
		how = "kept the incoming id"
	}
	d.step("request-id", d.RequestID, how)
}

func explainPath(d *Decision, r *Request) { d.step("path", d.Path, "normalised from "+r.Path) }

func explainClientIP(d *Decision, r *Request) {
	d.step("client-ip", d.ClientIP.String(), "peer "+r.Peer.String())
}

func explainRoute(e *Engine, d *Decision, r *Request, rt *route) {
	d.step("route", rt.name, "first route matching "+r.Method+" "+matchForm(e, d.Path))
}

func claimString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(t)
	case []any:
		parts := make([]string, 0, len(t))
		for i := 0; i < len(t); i++ {
			if s, ok := t[i].(string); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, " ")
	}
	return ""
}

// headerValueFilter drops the bytes a header value may not hold: a value
// is valid (no control bytes but tab) when it loses none. One compiled call
// (see httpsyntax.NewFilter).
var headerValueFilter = httpsyntax.NewFilter(httpsyntax.FieldValueChars)

// bearer extracts an RFC 6750 bearer token from the values of
// Authorization.
func bearer(values []string) (string, bool) {
	if len(values) == 0 {
		return "", false
	}
	v := values[0]
	if len(v) < 7 || !strings.EqualFold(v[:7], "Bearer ") {
		return "", false
	}
	t := strings.TrimSpace(v[7:])
	return t, t != ""
}

// reject turns d into a problem answer and reports the decision.
func reject(e *Engine, d *Decision, r *Request, status int, reason, title, detail string) {
	fail(d, status, reason, title, detail)
	if r.Explain {
		d.step("decision", strconv.Itoa(status), reason+": "+detail)
	}
	if e.observer != nil {
		e.observer.Decided(*d)
	}
}

func fail(d *Decision, status int, reason, title, detail string) {
	d.Allow = false
	d.Status = status
	d.Reason = reason
	p := problem.New(status, strings.ReplaceAll(reason, "_", "-"), title, detail)
	p.RequestID = d.RequestID
	p.Reason = reason
	p.Instance = d.Path
	d.Body = p.JSON()
	d.ContentType = problem.ContentType
}

func (d *Decision) step(check, result, detail string) {
	d.Trace = append(d.Trace, Step{Check: check, Result: result, Detail: detail})
}

// Observe reports what happened upstream to an allowed request: the breaker
// counts it as a success or failure, unless the client caused the failure
// (Outcome.ClientFault) or the edge does not know (Outcome.Unknown), in
// which case it only releases the request's slot. Call it exactly once per
// allowed decision (not for DecideOnly ones).
func (e *Engine) Observe(d *Decision, o Outcome) {
	if d.armed {
		d.armed = false
		b := d.breaker
		if b == nil {
			b = (*breaker.Registry).Get(e.breakers, d.Upstream)
		}
		if o.ClientFault || o.Unknown {
			(*breaker.Breaker).Release(b, d.ticket)
		} else {
			(*breaker.Breaker).Done(b, d.ticket, !isFailure(e, o))
		}
	}
	if e.observer != nil {
		e.observer.Upstream(*d, o)
	}
}

func isFailure(e *Engine, o Outcome) bool {
	if o.Timeout {
		return e.failOn.Timeout
	}
	if o.Connection {
		return e.failOn.Connection
	}
	for i := 0; i < len(e.failOn.Statuses); i++ {
		if e.failOn.Statuses[i] == o.Status {
			return true
		}
	}
	return false
}

// UpstreamFailure is the answer to an allowed request whose upstream gave no
// response: 504 past the timeout (counted from the hand-over of the whole
// request), 502 when it could not be reached. It does not call Observe.
func (e *Engine) UpstreamFailure(d Decision, o Outcome) Decision {
	f := d
	f.ResponseHeaders = append([][2]string(nil), d.ResponseHeaders...)
	if o.Timeout {
		fail(&f, http.StatusGatewayTimeout, ReasonUpstreamTimeout, "Gateway Timeout",
			"the upstream did not answer within "+e.timeout.String())
	} else {
		fail(&f, http.StatusBadGateway, ReasonUpstreamError, "Bad Gateway", "the upstream could not be reached")
	}
	return f
}

// ClientFailure is the answer to an allowed request whose client failed the
// exchange (o.ClientFault), by o.Reason: 408 client_timeout for a body that
// did not arrive within the route's bodyTimeout, 413 body_too_large for a
// streamed body past maxBodyBytes, 400 malformed_body for a body that
// breaks its own framing (a bad chunk, shorter than its Content-Length).
// For a client that went away (client_closed) it returns the status to log,
// StatusClientClosed, and no body: there is nobody to answer. Planes close
// the connection after any of these, since the rest of the body is unread.
// It does not call Observe.
func (e *Engine) ClientFailure(d Decision, o Outcome) Decision {
	f := d
	f.ResponseHeaders = append([][2]string(nil), d.ResponseHeaders...)
	switch o.Reason() {
	case ReasonClientTimeout:
		fail(&f, http.StatusRequestTimeout, ReasonClientTimeout, "Request Timeout",
			"the request body did not arrive within "+d.BodyTimeout.String())
	case ReasonBodyTooLarge:
		fail(&f, http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, "Content Too Large",
			"the request body exceeds the limit of "+strconv.FormatInt(e.maxBody, 10)+" bytes")
	case ReasonClientClosed:
		f.Allow = false
		f.Status = StatusClientClosed
		f.Reason = ReasonClientClosed
		f.Body = nil
		f.ContentType = ""
	default:
		fail(&f, http.StatusBadRequest, ReasonMalformedBody, "Bad Request",
			"the request body does not match its framing (a malformed chunk, or fewer bytes than its Content-Length)")
	}
	return f
}
