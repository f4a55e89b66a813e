package edge_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/policy"
)

func newTestEngine(t *testing.T) *edge.Engine {
	t.Helper()
	p, err := policy.DecodeJSON([]byte(`{"apiVersion":"contentguard.dev/v1","kind":"EdgePolicy","metadata":{"name":"t"},
		"spec":{"upstream":{"url":"http://127.0.0.1:1"},"circuitBreaker":{"consecutiveFailures":2,"openFor":"10s"},
		"routes":[{"name":"all","match":{"pathPrefix":"/"},"auth":"none"}]}}`), "t.json")
	return engineFor(t, p, err)
}

// TestRequestUpstreamNamesTheBreaker: a data plane in front of several
// upstreams names each request's upstream, and failures of one upstream open
// its breaker only.
func TestRequestUpstreamNamesTheBreaker(t *testing.T) {
	e := newTestEngine(t)
	req := func(up string) edge.Request {
		return edge.Request{Method: "GET", Path: "/x", Peer: netip.MustParseAddr("192.0.2.1"), ContentLength: -1, Upstream: up}
	}
	for i := 0; i < 2; i++ {
		d := e.Check(context.Background(), req("payments"))
		if !d.Allow || d.Upstream != "payments" {
			t.Fatalf("request %d: allow=%v upstream %q", i, d.Allow, d.Upstream)
		}
		e.Observe(&d, edge.Outcome{Status: 0, Connection: true})
	}
	if d := e.Check(context.Background(), req("payments")); d.Allow || d.Reason != edge.ReasonCircuitOpen || !strings.Contains(string(d.Body), "payments") {
		t.Fatalf("payments after two failures: allow=%v reason %s body %s", d.Allow, d.Reason, d.Body)
	}
	for _, up := range []string{"search", ""} {
		d := e.Check(context.Background(), req(up))
		if !d.Allow {
			t.Fatalf("upstream %q refused (%s): another upstream's failures opened its breaker", up, d.Reason)
		}
		e.Observe(&d, edge.Outcome{Status: 200})
	}
	if got := e.Breakers().Get("127.0.0.1:1").State(); got != breaker.Closed {
		t.Fatalf("the policy's own upstream is %s", got)
	}
}

// TestHeadersTruncatedIsRefused: a request whose header fields the data
// plane could not all see is refused with 431 before anything else, so no
// field past the cap reaches the upstream unchecked.
func TestHeadersTruncatedIsRefused(t *testing.T) {
	e := newTestEngine(t)
	d := e.Check(context.Background(), edge.Request{Method: "GET", Path: "/x", Peer: netip.MustParseAddr("192.0.2.1"),
		ContentLength: -1, HeadersTruncated: true, Header: http.Header{"X-Request-Id": {"abc"}}})
	if d.Allow || d.Status != http.StatusRequestHeaderFieldsTooLarge || d.Reason != edge.ReasonHeadersTooLarge {
		t.Fatalf("allow=%v status %d reason %s", d.Allow, d.Status, d.Reason)
	}
	if d.RequestID == "" || !strings.Contains(string(d.Body), d.RequestID) {
		t.Fatalf("problem %s does not carry the request id %q", d.Body, d.RequestID)
	}
}

// TestPathAsIsRefusesWhatTheUpstreamWouldReadDifferently: a plane that
// forwards the path as it received it (Envoy under ext_authz) gets a path
// the engine would normalise further refused, and a normal one judged as
// usual.
func TestPathAsIsRefusesWhatTheUpstreamWouldReadDifferently(t *testing.T) {
	e := newTestEngine(t)
	peer := netip.MustParseAddr("192.0.2.1")
	for _, c := range []struct {
		path  string
		allow bool
	}{
		{"/api/v1/jobs", true},
		{"/api/v1/", true},
		{"/api/./v1/jobs", false},
		{"/api//v1", false},
		{"/api/%2e%2e/admin", false},
		{"/a%2Fb", false},
		{"/caf%C3%A9", true},
	} {
		d := e.Check(context.Background(), edge.Request{Method: "GET", Path: c.path, Peer: peer, PathAsIs: true})
		if d.Allow != c.allow || !c.allow && (d.Status != http.StatusBadRequest || d.Reason != edge.ReasonBadPath) {
			t.Errorf("%s: allow=%v status %d reason %s, want allow=%v", c.path, d.Allow, d.Status, d.Reason, c.allow)
		}
		if d.Allow {
			e.Observe(&d, edge.Outcome{Status: 200})
		}
		// The same request from a plane that forwards the normalised path.
		if d := e.Check(context.Background(), edge.Request{Method: "GET", Path: c.path, Peer: peer}); !d.Allow {
			t.Errorf("%s without PathAsIs refused: %s", c.path, d.Reason)
		} else {
			e.Observe(&d, edge.Outcome{Status: 200})
		}
	}
}

// TestMethodCaseCannotDodgeARoute: a method in another case meets the route
// its upper-case form meets. Django and Werkzeug upper-case the method they
// are given, so a "delete" that the engine matched as a method of its own
// (on a route without a method list) reached them as DELETE with only the
// other route's scopes: the sidecar forwarded it with a read-only key.
func TestMethodCaseCannotDodgeARoute(t *testing.T) {
	p, err := policy.DecodeJSON([]byte(`{"apiVersion":"contentguard.dev/v1","kind":"EdgePolicy","metadata":{"name":"t"},
		"spec":{"upstream":{"url":"http://127.0.0.1:1"},
		"auth":{"apiKeys":{"keys":[{"id":"reader","sha256":"75faa757a8e1da36bdaac42307987ea88a7f449b34c6f157dc80b6ce87b0ad82","scopes":["read"]}]}},
		"routes":[{"name":"write","match":{"pathPrefix":"/api/","methods":["POST","PUT","DELETE"]},"auth":{"anyOf":["apiKey"],"scopes":["write"]}},
		          {"name":"read","match":{"pathPrefix":"/api/"},"auth":{"anyOf":["apiKey"],"scopes":["read"]}}]}}`), "t.json")
	e := engineFor(t, p, err)
	for _, method := range []string{"DELETE", "delete", "Delete", "post"} {
		d := e.Check(context.Background(), edge.Request{Method: method, Path: "/api/items/1", Peer: netip.MustParseAddr("192.0.2.1"),
			ContentLength: -1, Header: http.Header{"X-Api-Key": {"cg-conformance-read-key"}}})
		if d.Allow || d.Route != "write" || d.Reason != edge.ReasonInsufficientScope {
			t.Errorf("%s /api/items/1 with a read key: allow=%v route %q reason %s, want the write route's 403", method, d.Allow, d.Route, d.Reason)
		}
	}
	d := e.Check(context.Background(), edge.Request{Method: "get", Path: "/api/items/1", Peer: netip.MustParseAddr("192.0.2.1"),
		ContentLength: -1, Header: http.Header{"X-Api-Key": {"cg-conformance-read-key"}}})
	if !d.Allow || d.Route != "read" {
		t.Errorf("get with a read key: allow=%v route %q reason %s", d.Allow, d.Route, d.Reason)
	}
}

// TestAPIKeyFieldUnderEverySpelling: a key field named with three '-'
// (X-Gravitee-Api-Key) is one field under each of its '_' spellings, as
// data planes key them (canonical): beside the field itself, any of them is
// a second credential (400 ambiguous_header); the field alone is judged.
func TestAPIKeyFieldUnderEverySpelling(t *testing.T) {
	p, err := policy.DecodeJSON([]byte(`{"apiVersion":"contentguard.dev/v1","kind":"EdgePolicy","metadata":{"name":"t"},
		"spec":{"upstream":{"url":"http://127.0.0.1:1"},
		"auth":{"apiKeys":{"header":"X-Gravitee-Api-Key","keys":[{"id":"reader","sha256":"adf5ca9ab457361f07aa33f1eeb2308e1f7aadc6be3ab60fa9ce646357831a3f","scopes":["read"]}]}},
		"routes":[{"name":"all","match":{"pathPrefix":"/"},"auth":{"anyOf":["apiKey"]}}]}}`), "t.json")
	e := engineFor(t, p, err)
	check := func(h http.Header) edge.Decision {
		return e.Check(context.Background(), edge.Request{Method: "GET", Path: "/x", Peer: netip.MustParseAddr("192.0.2.1"), Header: h, DecideOnly: true})
	}
	const key = "cg-conformance-rw-key"
	if d := check(http.Header{"X-Gravitee-Api-Key": {key}}); !d.Allow {
		t.Fatalf("the key alone: %d %s, want allowed", d.Status, d.Reason)
	}
	for _, name := range []string{"x_gravitee_api_key", "X_Gravitee-Api-Key", "x-gravitee_api-key", "X-Gravitee-Api_Key", "X_gravitee-api_key"} {
		h := http.Header{"X-Gravitee-Api-Key": {key}}
		h[http.CanonicalHeaderKey(name)] = []string{"forged"}
		if d := check(h); d.Allow || d.Status != http.StatusBadRequest || d.Reason != edge.ReasonAmbiguousHeader {
			t.Errorf("beside %s: allow=%v %d %s, want 400 %s", name, d.Allow, d.Status, d.Reason, edge.ReasonAmbiguousHeader)
		}
	}
	if d := check(http.Header{"X-Gravitee-Api-Key": {key, "forged"}}); d.Reason != edge.ReasonAmbiguousHeader {
		t.Errorf("the field twice: %d %s, want 400 %s", d.Status, d.Reason, edge.ReasonAmbiguousHeader)
	}
}
