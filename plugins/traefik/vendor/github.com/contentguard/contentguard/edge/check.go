package edge

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/edge/cors"
	"github.com/contentguard/contentguard/edge/problem"
	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/edge/requestid"
	"github.com/contentguard/contentguard/edge/urlpath"
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
)

// StatusClientClosed is the status logged for a request whose client went
// away before its answer (NGINX's 499); it is never sent.
const StatusClientClosed = 499

// Check decides what to do with one request. It never blocks on the network
// except for a rate-limited JWKS refetch on an unknown key id, or a shared
// rate-limit store, both bounded by their own timeouts.
func (e *Engine) Check(ctx context.Context, r Request) Decision {
	d := Decision{ContentType: problem.ContentType, Upstream: e.upstream, Timeout: e.timeout}
	if r.Upstream != "" {
		d.Upstream = r.Upstream
	}
	// One allocation backs both header lists: 12 response and 6 upstream
	// headers cover a typical decision without growing.
	headers := make([][2]string, 0, 18)
	d.ResponseHeaders = headers[0:0:12]
	d.UpstreamHeaders = headers[12:12:18]
	if r.TLS {
		d.SecurityHeaders = e.securityTLS
	} else {
		d.SecurityHeaders = e.security
	}

	// Request ID first: every answer, including rejections, carries it.
	id, generated := requestid.Resolve(header(r.Header, e.idKey), e.trustID, e.newID)
	d.RequestID = id
	d.ResponseHeaders = append(d.ResponseHeaders, [2]string{e.idHeader, id})
	d.UpstreamHeaders = append(d.UpstreamHeaders, [2]string{e.idHeader, id})
	for i := 0; i < len(e.alsoIDs); i++ {
		d.ResponseHeaders = append(d.ResponseHeaders, [2]string{e.alsoIDs[i], id})
		d.UpstreamHeaders = append(d.UpstreamHeaders, [2]string{e.alsoIDs[i], id})
	}
	if r.Explain {
		how := "kept the incoming id"
		if generated {
			how = "generated"
		}
		d.step("request-id", id, how)
	}

	if r.HeadersTruncated {
		return e.reject(&d, r, http.StatusRequestHeaderFieldsTooLarge, ReasonHeadersTooLarge,
			"Request Header Fields Too Large", "the request has more header fields than the edge can inspect")
	}
	n, ambiguous := e.scanHeaders(r)
	if int64(n) > e.maxHeader {
		return e.reject(&d, r, http.StatusRequestHeaderFieldsTooLarge, ReasonHeadersTooLarge,
			"Request Header Fields Too Large", "the request headers are "+strconv.Itoa(n)+" bytes; the limit is "+strconv.FormatInt(e.maxHeader, 10))
	}
	if ambiguous != "" {
		return e.reject(&d, r, http.StatusBadRequest, ReasonAmbiguousHeader, "Bad Request",
			"the header name "+strconv.Quote(ambiguous)+" spells a framing header with '_' for '-', which upstreams may read as that header")
	}
	if r.ContentLength > e.maxBody {
		return e.reject(&d, r, http.StatusRequestEntityTooLarge, ReasonBodyTooLarge,
			"Content Too Large", "the request body is "+strconv.FormatInt(r.ContentLength, 10)+" bytes; the limit is "+strconv.FormatInt(e.maxBody, 10))
	}
	if r.Explain {
		d.step("limits", "ok", "headers and declared body within limits")
	}

	path, ok := urlpath.Normalize(r.Path)
	if !ok {
		return e.reject(&d, r, http.StatusBadRequest, ReasonBadPath, "Bad Request", "the request path is not a valid, normalisable path")
	}
	d.Path = path
	if !e.params && urlpath.HasParameter(path) {
		return e.reject(&d, r, http.StatusBadRequest, ReasonBadPath, "Bad Request",
			"the request path has a ';' path parameter, which upstreams disagree on (see spec.paths.allowParameters)")
	}
	if r.Explain {
		d.step("path", path, "normalised from "+r.Path)
	}

	origin := header(r.Header, "Origin")
	if e.cors != nil && cors.IsPreflight(r.Method, r.Header) {
		headers, ok := e.cors.Preflight(r.Header)
		if !ok {
			return e.reject(&d, r, http.StatusForbidden, ReasonPreflightRejected, "Forbidden",
				"CORS preflight refused: origin, method or headers not allowed")
		}
		d.ResponseHeaders = append(d.ResponseHeaders, headers...)
		d.Status = http.StatusNoContent
		d.Reason = ReasonPreflight
		d.ContentType = ""
		if r.Explain {
			d.step("cors", "preflight", "answered at the edge, not forwarded")
		}
		e.decided(&d)
		return d
	}
	if e.cors != nil && origin != "" {
		d.ResponseHeaders = append(d.ResponseHeaders, e.cors.Actual(origin)...)
	}

	d.ClientIP = e.clientIP.ClientIP(r.Peer, r.Header)
	if r.Explain {
		d.step("client-ip", d.ClientIP.String(), "peer "+r.Peer.String())
	}

	matched := e.matchForm(path)
	rt := e.match(r.Method, matched)
	if rt == nil {
		return e.reject(&d, r, http.StatusNotFound, ReasonNoRoute, "Not Found", "no route matches "+r.Method+" "+path)
	}
	d.Route = rt.name
	d.BodyTimeout = rt.bodyTimeout
	if r.Explain {
		d.step("route", rt.name, "first route matching "+r.Method+" "+matched)
	}

	// Headers that carry verified claims upstream are never taken from the
	// client, authenticated or not.
	d.StripHeaders = e.strip
	if len(r.Header["Upgrade"]) > 0 || len(r.Header["Http2-Settings"]) > 0 {
		if !e.upgrade(&d, r, rt) {
			return e.reject(&d, r, http.StatusForbidden, ReasonUpgradeRefused, "Forbidden",
				"route "+rt.name+" does not allow an upgrade to "+strconv.Quote(strings.Join(r.Header["Upgrade"], ", "))+
					" (only websocket, on a GET to a route with websocket: true)")
		}
		if r.Explain {
			d.step("upgrade", d.Upgrade, "h2c and HTTP2-Settings are dropped; websocket only where the route allows it")
		}
	}
	if !rt.public {
		if reject := e.authenticate(ctx, &d, r, rt); reject {
			return d
		}
	} else if r.Explain {
		d.step("auth", "none", "public route")
	}

	if rt.limit != nil {
		key := e.rateKey(&d, r, rt)
		res, err := e.rates.Allow(ctx, key, *rt.limit, e.now())
		if err != nil {
			return e.reject(&d, r, http.StatusServiceUnavailable, ReasonRateLimitError, "Service Unavailable", "the rate-limit store is unavailable")
		}
		d.ResponseHeaders = ratelimit.AppendHeaders(d.ResponseHeaders, e.rateHeaders, res)
		if !res.Allowed {
			if e.rateHeaders == ratelimit.StyleNone {
				// Retry-After goes on every 429, whatever the header style.
				d.ResponseHeaders = append(d.ResponseHeaders, [2]string{"Retry-After", strconv.FormatInt(ratelimit.RetryAfterSeconds(res.RetryAfter), 10)})
			}
			retry := strconv.FormatInt(ratelimit.RetryAfterSeconds(res.RetryAfter), 10)
			if res.StoreDown {
				return e.reject(&d, r, http.StatusTooManyRequests, ReasonRateLimitStoreDown, "Too Many Requests",
					"the shared rate-limit store is unavailable and the policy refuses without it (onError: deny); retry in "+retry+"s")
			}
			return e.reject(&d, r, http.StatusTooManyRequests, ReasonRateLimited, "Too Many Requests",
				"rate limit of route "+rt.name+" exceeded; retry in "+retry+"s")
		}
		if r.Explain {
			d.step("rate-limit", "ok", "bucket "+key+": "+strconv.Itoa(res.Remaining)+" of "+strconv.Itoa(res.Limit)+" left")
		}
	}

	if !r.DecideOnly {
		b := e.breakers.Get(d.Upstream)
		t, ok, wait := b.Allow()
		if !ok {
			d.ResponseHeaders = append(d.ResponseHeaders, [2]string{"Retry-After", strconv.FormatInt(ratelimit.RetryAfterSeconds(wait), 10)})
			return e.reject(&d, r, http.StatusServiceUnavailable, ReasonCircuitOpen, "Service Unavailable",
				"the circuit breaker for "+d.Upstream+" is open; retry in "+strconv.FormatInt(ratelimit.RetryAfterSeconds(wait), 10)+"s")
		}
		d.ticket = t
		d.armed = true
		if r.Explain {
			d.step("circuit-breaker", b.State().String(), d.Upstream)
		}
	}

	d.Allow = true
	d.Reason = ReasonAllowed
	e.decided(&d)
	return d
}

// authenticate verifies the route's credentials; it reports true when it
// has turned d into a rejection.
func (e *Engine) authenticate(ctx context.Context, d *Decision, r Request, rt *route) bool {
	failure := ReasonCredentialsMissing
	presented := false
	for i := 0; i < len(rt.anyOf); i++ {
		switch rt.anyOf[i] {
		case "jwt":
			if e.verifier == nil {
				continue
			}
			token, has := bearer(r.Header)
			if !has {
				continue
			}
			presented = true
			id, reason := e.verifier.Verify(ctx, token)
			if reason != auth.ReasonOK {
				if failure == ReasonCredentialsMissing {
					failure = string(reason)
				}
				continue
			}
			d.identity = id
			d.Subject = id.Subject
			d.AuthMethod = "jwt"
		case "apiKey":
			if e.keyring == nil {
				continue
			}
			key := header(r.Header, e.apiKeyHeader)
			if key == "" {
				continue
			}
			presented = true
			k, ok := e.keyring.Lookup(key)
			if !ok {
				if failure == ReasonCredentialsMissing {
					failure = ReasonInvalidAPIKey
				}
				continue
			}
			d.identity = auth.Identity{Provider: "apiKey", Subject: k.ID, Scopes: k.Scopes}
			d.Subject = "apikey:" + k.ID
			d.AuthMethod = "apiKey"
		}
		if d.AuthMethod != "" {
			break
		}
	}
	if d.AuthMethod == "" {
		detail := "credentials are missing: this route accepts " + rt.accepts
		if presented {
			detail = "credentials were rejected: " + strings.ReplaceAll(failure, "_", " ")
		}
		d.ResponseHeaders = append(d.ResponseHeaders, [2]string{"WWW-Authenticate",
			`Bearer error="invalid_token", error_description="` + detail + `"`})
		e.reject(d, r, http.StatusUnauthorized, failure, "Unauthorized", detail)
		return true
	}
	if r.Explain {
		d.step("auth", d.AuthMethod, "subject "+d.Subject+", scopes "+strings.Join(d.identity.Scopes, " "))
	}
	for i := 0; i < len(rt.scopes); i++ {
		if !containsString(d.identity.Scopes, rt.scopes[i]) {
			d.ResponseHeaders = append(d.ResponseHeaders, [2]string{"WWW-Authenticate", rt.scopeHeader})
			e.reject(d, r, http.StatusForbidden, ReasonInsufficientScope, "Forbidden",
				"the credentials lack scope "+rt.scopes[i])
			return true
		}
	}
	e.forwardIdentity(d)
	return false
}

// forwardIdentity adds the verified claims that the policy forwards.
func (e *Engine) forwardIdentity(d *Decision) {
	id := d.identity
	claims := e.forward[id.Provider]
	if d.AuthMethod == "apiKey" {
		claims = e.keyForward
	}
	for i := 0; i < len(claims); i++ {
		c := claims[i]
		var v string
		switch c.Claim {
		case "sub":
			v = id.Subject
		case "scope", "scp":
			v = id.ScopeText
			if v == "" {
				v = strings.Join(id.Scopes, " ")
			}
		default:
			v = claimString(id.Claims[c.Claim])
		}
		if v != "" && validHeaderValue(v) {
			d.UpstreamHeaders = append(d.UpstreamHeaders, [2]string{c.Header, v})
		}
	}
}

// rateKey builds the bucket key of a request. A key whose value is missing
// (no such header or claim) falls back to the client address, so that
// omitting a header cannot buy a fresh or shared-by-everyone bucket.
func (e *Engine) rateKey(d *Decision, r Request, rt *route) string {
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
	return ipKey(rt.keyBase, d.ClientIP)
}

// ipKey is keyBase + "ip:" + ratelimit.IPKey(addr), built with one
// allocation: this key is on the path of nearly every request.
func ipKey(keyBase string, addr netip.Addr) string {
	var buf [96]byte
	b := append(buf[:0], keyBase...)
	b = append(b, "ip:"...)
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		b = p.AppendTo(b)
	} else if addr.IsValid() {
		b = addr.AppendTo(b)
	}
	return string(b)
}

// header returns the first value of a header whose name is already in
// canonical form, without canonicalising it again on every request.
func header(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
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

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// bearer extracts an RFC 6750 bearer token from Authorization.
func bearer(h http.Header) (string, bool) {
	v := header(h, "Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "Bearer ") {
		return "", false
	}
	t := strings.TrimSpace(v[7:])
	return t, t != ""
}

// reject turns d into a problem answer and reports the decision.
func (e *Engine) reject(d *Decision, r Request, status int, reason, title, detail string) Decision {
	fail(d, status, reason, title, detail)
	if r.Explain {
		d.step("decision", strconv.Itoa(status), reason+": "+detail)
	}
	e.decided(d)
	return *d
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

func (e *Engine) decided(d *Decision) {
	if e.observer != nil {
		e.observer.Decided(*d)
	}
}

func (d *Decision) step(check, result, detail string) {
	d.Trace = append(d.Trace, Step{Check: check, Result: result, Detail: detail})
}

// Observe reports what happened upstream to an allowed request: the breaker
// counts it as a success or failure, unless the client caused the failure
// (Outcome.ClientFault), in which case it only releases the request's slot.
// Call it exactly once per allowed decision (not for DecideOnly ones).
func (e *Engine) Observe(d *Decision, o Outcome) {
	if d.armed {
		d.armed = false
		b := e.breakers.Get(d.Upstream)
		if o.ClientFault {
			b.Release(d.ticket)
		} else {
			b.Done(d.ticket, !e.isFailure(o))
		}
	}
	if e.observer != nil {
		e.observer.Upstream(*d, o)
	}
}

func (e *Engine) isFailure(o Outcome) bool {
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
