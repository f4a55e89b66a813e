package edge

import (
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/edge/breaker"
)

// Request is the gateway-neutral view of an incoming request. Adapters fill
// it from their native request; the engine never sees a gateway type.
type Request struct {
	Method string
	Host   string
	// Path is the escaped path as the client sent it, without the query.
	Path     string
	RawQuery string
	Header   http.Header
	// Peer is the address of the connection's other end: the client, or
	// the last proxy in front of this data plane.
	Peer netip.Addr
	TLS  bool
	// Conn, when set, answers for Peer and TLS on demand, in place of the
	// two fields: a data plane for which each costs a round trip (the Kong
	// plugin: a PDK call each) sets it, and the engine asks only when the
	// decision depends on the answer, at most once per Check. See Conn.
	Conn Conn
	// ContentLength is the declared body size, -1 when unknown (chunked).
	ContentLength int64
	// HeaderBytes is the size of the request head when the data plane knows
	// it; 0 makes the engine estimate it from Header.
	HeaderBytes int
	// DecideOnly marks a decision for a data plane that forwards without
	// reporting the outcome (NGINX auth_request): the circuit breaker is
	// not consulted, because nothing would report back to it.
	DecideOnly bool
	// Explain records every check in Decision.Trace (policy explain).
	Explain bool
	// Upstream names the upstream, and with it the circuit breaker, of a
	// data plane that sends one policy's requests to several upstreams (the
	// Kong plugin on several services); "" is the policy's upstream. Names
	// must come from configuration: each one is a breaker for good.
	Upstream string
	// PathAsIs says the plane forwards Path to the upstream as it is: it
	// cannot hand the upstream the normalised path (Envoy under ext_authz
	// normalises with its own rules, then forwards what it has). The engine
	// then refuses, 400 bad_path, a path that is not already in normal
	// form: the upstream would read it differently from the edge.
	PathAsIs bool
	// HeadersTruncated says the data plane saw only part of the request's
	// header fields because it reached its cap: the engine refuses such a
	// request, since a field past the cap would escape every check and the
	// stripping of forwarded-claim headers.
	HeadersTruncated bool
}

// Conn is what a data plane knows about a request's connection, asked for
// only when a decision needs it (Request.Conn):
//
//   - Peer when the client's address matters: a rate-limit key that is, or
//     falls back to, the address (key ip, or a missing header, claim or
//     subject), or Request.Explain. Decision.ClientIP stays the zero Addr
//     when it was not needed.
//   - TLS when the policy's answers differ over TLS: the strict preset's
//     Strict-Transport-Security. It is then asked on every request.
//
// A Peer that is not an IP (a Unix socket) is the zero Addr, as in
// Request.Peer.
type Conn interface {
	Peer() netip.Addr
	TLS() bool
}

// Decision is the engine's answer for one request.
//
// If Allow is false the adapter answers Status with ResponseHeaders,
// SecurityHeaders and Body (Content-Type ContentType) and forwards nothing.
// If Allow is true it forwards the request to Path after deleting every
// header in StripHeaders and setting UpstreamHeaders, sets ResponseHeaders and
// SecurityHeaders on the upstream's response, and then calls Engine.Observe.
type Decision struct {
	Allow  bool
	Status int
	// Reason is a stable machine-readable code: allowed, no_route,
	// token_expired, insufficient_scope, rate_limited, circuit_open, ...
	Reason    string
	Route     string
	RequestID string
	ClientIP  netip.Addr
	// Subject is the authenticated identity: a JWT's sub, or "apikey:<id>".
	Subject string
	// AuthMethod is "jwt", "apiKey" or "" for anonymous routes.
	AuthMethod string
	// Path is the normalised path; it is what the upstream must receive.
	Path string

	ResponseHeaders [][2]string
	// SecurityHeaders is shared and read-only: never modify it.
	SecurityHeaders [][2]string
	UpstreamHeaders [][2]string
	StripHeaders    []string

	Body        []byte
	ContentType string

	// Upstream names the upstream (and its circuit breaker) when forwarding.
	Upstream string
	// Timeout bounds one upstream attempt, from the moment the whole
	// request (head and body) has been handed to the upstream.
	Timeout time.Duration
	// BodyTimeout bounds the arrival of the request body, from the end of
	// its head (the route's bodyTimeout): past it the plane answers with
	// ClientFailure (408) and reports a client fault.
	BodyTimeout time.Duration
	// Upgrade is the protocol the request may switch to ("websocket" on a
	// route that allows it), or "": a plane tunnels an upgrade only when it
	// is set.
	Upgrade string

	identity auth.Identity
	ticket   breaker.Ticket
	armed    bool             // a breaker ticket awaits Observe
	located  bool             // ClientIP is resolved
	breaker  *breaker.Breaker // the ticket's breaker
	// names maps the header names the engine writes to their canonical
	// form, and strips is the prepared form of StripHeaders and the names
	// of UpstreamHeaders: both the engine's, shared and read-only, so that
	// applying a decision canonicalises and compares nothing per request.
	// A Decision made by hand has neither and is applied all the same.
	names  map[string]string
	strips *stripSet

	Trace []Step
}

// Step is one check in an explained decision.
type Step struct {
	Check  string `json:"check"`
	Result string `json:"result"`
	Detail string `json:"detail,omitempty"`
}

// Identity returns the verified identity of the request, if any. The claims
// map and scope slice are shared: read them, never modify them.
func (d *Decision) Identity() auth.Identity { return d.identity }

// Outcome is what happened upstream to an allowed request.
type Outcome struct {
	Status     int  // upstream status; 0 when no response arrived
	Timeout    bool // no response within Decision.Timeout
	Connection bool // the upstream could not be reached
	// ClientFault says the exchange failed because of the client, not the
	// upstream: its body was malformed, too slow or cut short, or it went
	// away. Observe then counts nothing against the upstream (a client must
	// not be able to open the breaker for everyone) and frees a half-open
	// probe slot. Status may still carry the answer the client was given.
	ClientFault bool
	// Unknown says the edge does not know what the upstream did, because
	// something after the edge answered the client instead (a Kong plugin
	// running after this one, Kong's own error page for a failure of its
	// own), or the plane lost track of the exchange. Like ClientFault it
	// counts nothing against the upstream and frees a half-open probe
	// slot, but it is nobody's fault: Fault "none", reason outcome_unknown.
	Unknown  bool
	Duration time.Duration
}

// DeclaredLength is a request's declared body size, for Request's
// ContentLength, from its Content-Length and Transfer-Encoding fields as a
// plane that sees only the head receives them: -1 for a chunked body (any
// transfer coding but identity) or a Content-Length that is not a
// non-negative number, 0 when none is declared.
func DeclaredLength(contentLength, transferEncoding string) int64 {
	if transferEncoding != "" && !strings.EqualFold(strings.TrimSpace(transferEncoding), "identity") {
		return -1
	}
	if contentLength == "" {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(contentLength), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// Failed reports whether the outcome produced no upstream response.
func (o Outcome) Failed() bool { return o.Timeout || o.Connection }

// Reason is the reason code of the exchange's end: allowed when the upstream
// answered; upstream_timeout or upstream_unreachable when it did not; and
// for a client's fault, client_timeout (Timeout), body_too_large (Status
// 413), client_closed (Status StatusClientClosed) or malformed_body; and
// outcome_unknown when the edge never saw the upstream's answer (Unknown).
// Metrics, access logs and ClientFailure all read it here.
func (o Outcome) Reason() string {
	switch {
	case o.ClientFault && o.Timeout:
		return ReasonClientTimeout
	case o.ClientFault && o.Status == http.StatusRequestEntityTooLarge:
		return ReasonBodyTooLarge
	case o.ClientFault && o.Status == StatusClientClosed:
		return ReasonClientClosed
	case o.ClientFault:
		return ReasonMalformedBody
	case o.Unknown:
		return ReasonOutcomeUnknown
	case o.Timeout:
		return ReasonUpstreamTimeout
	case o.Connection:
		return ReasonUpstreamError
	}
	return ReasonAllowed
}

// Fault says whose fault the exchange's end was, for metric labels and
// access logs: "client" (o.ClientFault: never counted by the breaker),
// "upstream" (no response, or a 5xx), or "none" (an answer below 500, or an
// outcome the edge does not know).
func (o Outcome) Fault() string {
	switch {
	case o.ClientFault:
		return "client"
	case o.Unknown:
		return "none"
	case o.Failed() || o.Status >= 500:
		return "upstream"
	}
	return "none"
}

// SetResponseHeaders writes the decision's response headers and security
// headers into h, replacing values of the same name. Adapters call it on
// rejections and on the upstream's response alike.
func (d *Decision) SetResponseHeaders(h http.Header) {
	// A header's canonical name is looked up in names (canonicalised only
	// when it is not there), inline: an interpreted call per header costs
	// the Traefik plugin more than the header itself.
	lists := [2][][2]string{d.ResponseHeaders, d.SecurityHeaders}
	for l := 0; l < len(lists); l++ {
		for i := 0; i < len(lists[l]); i++ {
			key := d.names[lists[l][i][0]]
			if key == "" {
				key = textproto.CanonicalMIMEHeaderKey(lists[l][i][0])
			}
			h[key] = []string{lists[l][i][1]}
		}
	}
}

// SetUpstreamHeaders prepares the headers of the forwarded request: it
// deletes every header the client may not set (forwarded claims, and any
// header the decision sets, under any spelling Strips recognises) and sets
// the request ID and verified claims.
func (d *Decision) SetUpstreamHeaders(h http.Header) {
	s := d.strips
	for name := range h {
		// The engine's decisions know which name lengths can match: most
		// names are let through on their length alone.
		if s != nil && (len(name) >= len(s.lengths) || !s.lengths[len(name)]) {
			continue
		}
		if strips(d, name) {
			delete(h, name)
		}
	}
	for i := 0; i < len(d.UpstreamHeaders); i++ {
		key := d.names[d.UpstreamHeaders[i][0]]
		if key == "" {
			key = textproto.CanonicalMIMEHeaderKey(d.UpstreamHeaders[i][0])
		}
		h[key] = []string{d.UpstreamHeaders[i][1]}
	}
}

// Strips reports whether a client's header called name must not reach the
// upstream: it names a header the decision strips (forwarded claims) or
// sets (request IDs, claims), compared without regard to ASCII case and
// with '_' and '-' alike. The underscore spelling matters because CGI-style
// servers (WSGI, Rack, PHP) see X_Auth_Subject and X-Auth-Subject as the
// same HTTP_X_AUTH_SUBJECT: a client must not plant a claim that way. For
// the same reason the '_' spellings of the X-Forwarded-* fields, which
// planes write afresh, are stripped.
func (d *Decision) Strips(name string) bool { return strips(d, name) }

func strips(d *Decision, name string) bool {
	if s := d.strips; s != nil {
		if s.exact[name] {
			return true
		}
		if len(name) >= len(s.lengths) || !s.lengths[len(name)] {
			return false
		}
		folded := fieldNameFolder.Replace(name)
		return s.folded[folded] || s.underscored[folded] && strings.IndexByte(name, '_') >= 0
	}
	if strings.IndexByte(name, '_') >= 0 {
		for i := 0; i < len(forwardingFields); i++ {
			if sameFieldName(name, forwardingFields[i]) {
				return true
			}
		}
	}
	for i := 0; i < len(d.StripHeaders); i++ {
		if sameFieldName(name, d.StripHeaders[i]) {
			return true
		}
	}
	for i := 0; i < len(d.UpstreamHeaders); i++ {
		if sameFieldName(name, d.UpstreamHeaders[i][0]) {
			return true
		}
	}
	return false
}

// stripSet is what Strips compares a name with, prepared once per engine
// for its decisions: the names of StripHeaders and of every header the
// engine may set upstream, exactly as written and canonical (exact), and
// folded as sameFieldName compares them (folded); the forwarding fields,
// folded, for names that hold a '_' (underscored); and the lengths all of
// these have, so that a name of another length is let through at once.
type stripSet struct {
	exact       map[string]bool
	folded      map[string]bool
	underscored map[string]bool
	lengths     []bool
}

// newStripSet prepares the set of strip plus upstream.
func newStripSet(strip, upstream []string) *stripSet {
	s := &stripSet{exact: map[string]bool{}, folded: map[string]bool{}, underscored: map[string]bool{}}
	add := func(m map[string]bool, name string) {
		for len(s.lengths) <= len(name) {
			s.lengths = append(s.lengths, false)
		}
		s.lengths[len(name)] = true
		m[fieldNameFolder.Replace(name)] = true
	}
	for _, list := range [][]string{strip, upstream} {
		for _, name := range list {
			s.exact[name] = true
			s.exact[textproto.CanonicalMIMEHeaderKey(name)] = true
			add(s.folded, name)
		}
	}
	for _, name := range forwardingFields {
		add(s.underscored, name)
	}
	return s
}

// fieldNameFolder folds a header name as sameFieldName compares: ASCII
// letters to lower case, '_' to '-'. One compiled call.
var fieldNameFolder = func() *strings.Replacer {
	pairs := []string{"_", "-"}
	for c := 'A'; c <= 'Z'; c++ {
		pairs = append(pairs, string(c), string(c+'a'-'A'))
	}
	return strings.NewReplacer(pairs...)
}()

// sameFieldName compares header names ASCII case-insensitively with '_'
// and '-' alike.
func sameFieldName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if x != y {
			return false
		}
	}
	return true
}
