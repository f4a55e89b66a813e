package edge

import (
	"net/http"
	"net/textproto"
	"strings"
)

// Rules about how a request reads on the wire: what an upstream behind the
// edge could read differently from the edge itself is refused or removed
// here, once, for every data plane.

// framingFields are the fields that frame a message. Their spellings with
// '_' for '-' are refused (see framingLookalike).
var framingFields = []string{"Content-Length", "Transfer-Encoding"}

// forwardingFields are the fields the data planes write afresh for the
// upstream: a client's copy spelled with '_' is stripped (Decision.Strips)
// like the fields the decision sets, since CGI-style upstreams read
// X_Forwarded_For as X-Forwarded-For.
var forwardingFields = []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"}

// h2cFields are what an h2c upgrade (RFC 7540 §3.2) adds to a request. The
// edge drops them and forwards the request as plain HTTP/1.1, which RFC
// 9110 §7.8 allows and what `curl --http2 http://…` expects: an upstream
// that accepted the upgrade would give the client a raw HTTP/2 connection
// straight to it, past every check of the edge (h2c smuggling). Connection
// goes too: it named the other two.
var h2cFields = []string{"Upgrade", "HTTP2-Settings", "Connection"}

// framingLookalike reports whether name spells a framing field with '_'
// for '-' ("Transfer_Encoding"). The engine refuses such a request (400
// ambiguous_header), on every data plane alike; Check measures the request
// head in the same pass over the header.
//
// CGI-style servers (WSGI, Rack, PHP) and lenient parsers read
// "Transfer_Encoding" as Transfer-Encoding: forwarded, such a field would
// reframe the request on a pooled upstream connection (a desync). NGINX
// drops names with '_' by default for this reason.
func framingLookalike(name string) bool {
	if strings.IndexByte(name, '_') < 0 {
		return false
	}
	for i := 0; i < len(framingFields); i++ {
		if sameFieldName(name, framingFields[i]) {
			return true
		}
	}
	return false
}

// upgrade applies the route's upgrade rule to a request that carries
// Upgrade or HTTP2-Settings: an h2c upgrade is dropped (see h2cFields), a
// GET upgrading to websocket alone is let through on a route with
// websocket: true (Decision.Upgrade), and anything else is refused. It
// reports false when the request must be refused.
func upgrade(e *Engine, d *Decision, r *Request, rt *route) bool {
	values := r.Header["Upgrade"]
	switch {
	case len(values) == 0 || allTokens(values, "h2c"):
		d.StripHeaders = e.stripUpgrade
		d.strips = e.stripsUpgrade
	case rt.websocket && len(values) == 1 && allTokens(values, "websocket") && r.Method == http.MethodGet:
		d.Upgrade = "websocket"
	default:
		return false
	}
	return true
}

// allTokens reports whether every comma-separated element of values is
// token (ASCII case-insensitive), and there is at least one.
func allTokens(values []string, token string) bool {
	n := 0
	for i := 0; i < len(values); i++ {
		for _, elem := range strings.Split(values[i], ",") {
			elem = strings.TrimSpace(elem)
			if elem == "" {
				continue
			}
			if !strings.EqualFold(elem, token) {
				return false
			}
			n++
		}
	}
	return n > 0
}

// underscoreSpellings returns the canonical forms (as data planes key
// http.Header) of name with '_' for one or more of its '-': the spellings
// under which a CGI-style upstream reads the field as name. With more than
// four '-' it returns those with one '_' and the one with all, not every
// combination.
func underscoreSpellings(name string) []string {
	var dashes []int
	for i := 0; i < len(name); i++ {
		if name[i] == '-' {
			dashes = append(dashes, i)
		}
	}
	var masks []int
	if len(dashes) <= 4 {
		for m := 1; m < 1<<len(dashes); m++ {
			masks = append(masks, m)
		}
	} else {
		for i := 0; i < len(dashes); i++ {
			masks = append(masks, 1<<i)
		}
		masks = append(masks, 1<<len(dashes)-1)
	}
	out := make([]string, 0, len(masks))
	for _, m := range masks {
		b := []byte(name)
		for i := 0; i < len(dashes); i++ {
			if m&(1<<i) != 0 {
				b[dashes[i]] = '_'
			}
		}
		out = append(out, textproto.CanonicalMIMEHeaderKey(string(b)))
	}
	return out
}
