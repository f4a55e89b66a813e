package edge_test

import (
	"context"
	"net/http"
	"net/netip"
	"reflect"
	"testing"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
)

// countingConn answers for a request's connection and counts the questions.
type countingConn struct {
	peer         netip.Addr
	tls          bool
	peers, tlses int
}

func (c *countingConn) Peer() netip.Addr { c.peers++; return c.peer }
func (c *countingConn) TLS() bool        { c.tlses++; return c.tls }

// connPolicy has one route per way a decision can depend on the client's
// address: none, ip, a subject, a header that is there or falls back to the
// address,
// a route-wide bucket, and an ip-keyed route that refuses before its limit.
func connPolicy(securityHeaders string) string {
	return `apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: conn}
spec:
  clientIP: {trustedProxies: [10.0.0.0/8], headers: [X-Forwarded-For]}
  securityHeaders: ` + securityHeaders + `
  auth:
    apiKeys:
      header: X-API-Key
      keys:
        - id: reader                  # cg-conformance-read-key
          sha256: 75faa757a8e1da36bdaac42307987ea88a7f449b34c6f157dc80b6ce87b0ad82
          scopes: [read]
  routes:
    - {name: open, match: {path: /open}, auth: none}
    - {name: per-ip, match: {path: /per-ip}, auth: none, rateLimit: {key: ip, rate: 5, per: 1h}}
    - {name: per-subject, match: {path: /per-subject}, auth: {anyOf: [apiKey]}, rateLimit: {key: subject, rate: 5, per: 1h}}
    - {name: per-tenant, match: {path: /per-tenant}, auth: none, rateLimit: {key: "header:X-Tenant", rate: 5, per: 1h}}
    - {name: per-route, match: {path: /per-route}, auth: none, rateLimit: {key: route, rate: 5, per: 1h}}
    - {name: keyed-ip, match: {path: /keyed-ip}, auth: {anyOf: [apiKey]}, rateLimit: {key: ip, rate: 5, per: 1h}}
`
}

func newConnEngine(t *testing.T, securityHeaders string) *edge.Engine {
	t.Helper()
	p, err := policyfile.Parse("conn.yaml", []byte(connPolicy(securityHeaders)))
	return engineFor(t, p, err)
}

// engineFor is an engine for p, closed when the test ends; err is p's
// parse error, if any.
func engineFor(t *testing.T, p *policy.Policy, err error) *edge.Engine {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	e, err := edge.New(context.Background(), p, edge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// TestConnAskedOnlyWhenNeeded: with Request.Conn the engine asks for the
// peer only when the decision depends on the client's address, and whether
// the request came over TLS only when the policy's answers differ over TLS;
// each at most once. The decisions are those of an engine given Peer and
// TLS up front (a second engine on the same policy, so that both spend
// their own buckets alike).
func TestConnAskedOnlyWhenNeeded(t *testing.T) {
	key := http.Header{"X-Api-Key": {"cg-conformance-read-key"}}
	for _, tc := range []struct {
		name            string
		securityHeaders string
		path            string
		header          http.Header
		peer            string
		tls             bool
		explain         bool
		peers, tlses    int
		clientIP        string // when asked
	}{
		{name: "public route, strict, https", securityHeaders: "strict", path: "/open", tls: true, tlses: 1},
		{name: "public route, strict, http", securityHeaders: "strict", path: "/open", tlses: 1},
		{name: "public route, no security headers", securityHeaders: "none", path: "/open", tls: true},
		{name: "ip key", securityHeaders: "strict", path: "/per-ip", peers: 1, tlses: 1, clientIP: "192.0.2.7"},
		{name: "ip key behind a trusted proxy", securityHeaders: "strict", path: "/per-ip", peer: "10.1.2.3",
			header: http.Header{"X-Forwarded-For": {"198.51.100.9"}}, peers: 1, tlses: 1, clientIP: "198.51.100.9"},
		{name: "subject key with a subject", securityHeaders: "none", path: "/per-subject", header: key},
		{name: "header key", securityHeaders: "none", path: "/per-tenant", header: http.Header{"X-Tenant": {"blue"}}},
		{name: "header key falls back to the address", securityHeaders: "none", path: "/per-tenant", peers: 1, clientIP: "192.0.2.7"},
		{name: "route key", securityHeaders: "none", path: "/per-route"},
		{name: "ip key, refused before the limit", securityHeaders: "strict", path: "/keyed-ip", tlses: 1},
		{name: "ip key, authenticated", securityHeaders: "strict", path: "/keyed-ip", header: key, peers: 1, tlses: 1, clientIP: "192.0.2.7"},
		{name: "no route", securityHeaders: "strict", path: "/nowhere", tlses: 1},
		{name: "bad path", securityHeaders: "strict", path: "/%zz", tlses: 1},
		{name: "explained", securityHeaders: "none", path: "/open", explain: true, peers: 1, tlses: 1, clientIP: "192.0.2.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer := netip.MustParseAddr("192.0.2.7")
			if tc.peer != "" {
				peer = netip.MustParseAddr(tc.peer)
			}
			header := tc.header.Clone()
			if header == nil {
				header = http.Header{}
			}
			header.Set("X-Request-Id", "0190f3c2-7b1e-7cc1-9d2a-5b8f1e0a3c44")
			req := edge.Request{Method: http.MethodGet, Host: "edge.test", Path: tc.path, Header: header, Explain: tc.explain}

			eager := req
			eager.Peer, eager.TLS = peer, tc.tls
			want := newConnEngine(t, tc.securityHeaders).Check(context.Background(), eager)

			conn := &countingConn{peer: peer, tls: tc.tls}
			lazy := req
			lazy.Conn = conn
			got := newConnEngine(t, tc.securityHeaders).Check(context.Background(), lazy)

			if conn.peers != tc.peers || conn.tlses != tc.tlses {
				t.Errorf("asked for the peer %d times and TLS %d times, want %d and %d", conn.peers, conn.tlses, tc.peers, tc.tlses)
			}
			if tc.clientIP != "" && got.ClientIP.String() != tc.clientIP {
				t.Errorf("client %s, want %s", got.ClientIP, tc.clientIP)
			}
			if tc.clientIP == "" && got.ClientIP.IsValid() {
				t.Errorf("client %s resolved without being needed", got.ClientIP)
			}
			if got.Allow != want.Allow || got.Status != want.Status || got.Reason != want.Reason || got.Route != want.Route ||
				!reflect.DeepEqual(got.ResponseHeaders, want.ResponseHeaders) ||
				!reflect.DeepEqual(got.SecurityHeaders, want.SecurityHeaders) ||
				!reflect.DeepEqual(got.UpstreamHeaders, want.UpstreamHeaders) || string(got.Body) != string(want.Body) {
				t.Errorf("with Conn:\n%+v\nwith Peer and TLS:\n%+v", got, want)
			}
			if tc.tls && tc.securityHeaders == "strict" && !hasHeader(got.SecurityHeaders, "Strict-Transport-Security") {
				t.Errorf("no HSTS over TLS: %v", got.SecurityHeaders)
			}
		})
	}
}

func hasHeader(list [][2]string, name string) bool {
	for _, hv := range list {
		if http.CanonicalHeaderKey(hv[0]) == name {
			return true
		}
	}
	return false
}

// TestConformanceWithConn: every case of the suite decides the same when the
// plane answers for the connection through Request.Conn.
func TestConformanceWithConn(t *testing.T) {
	conformance.Run(t, enginePlane{conn: true}, conformance.Options{})
}
