package exchange

import (
	"context"
	"net/http"
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/policy/policyfile"
)

// TestHeaderHelpersMatchDecision: the cached-name header helpers do exactly
// what edge.Decision.SetResponseHeaders / SetUpstreamHeaders do.
func TestHeaderHelpersMatchDecision(t *testing.T) {
	p, err := policyfile.Load(filepath.Join(conformance.Dir(), "policies", "standard.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := edge.New(context.Background(), p, edge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	names := NewHeaderNames(p)
	reqs := []edge.Request{
		{Method: "POST", Path: "/api/v1/analyze", Header: http.Header{"X-Api-Key": {"cg-conformance-rw-key"}, "Origin": {"https://app.example.com"}, "X-Auth-Subject": {"forged"}}},
		{Method: "GET", Path: "/api/v1/x", Header: http.Header{"X-Request-Id": {"keep-me"}}},
		{Method: "OPTIONS", Path: "/api/v1/x", Header: http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"}}},
		{Method: "GET", Path: "/nowhere", Header: http.Header{}},
	}
	for i, r := range reqs {
		r.Peer = netip.MustParseAddr("127.0.0.1")
		d := e.Check(context.Background(), r)
		upstream := func() http.Header {
			return http.Header{"X-Request-Id": {"upstream"}, "Content-Type": {"text/plain"}, "X-Frame-Options": {"SAMEORIGIN"}}
		}
		want, got := upstream(), upstream()
		d.SetResponseHeaders(want)
		names.SetResponseHeaders(got, &d)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("request %d response headers:\n got %v\nwant %v", i, got, want)
		}
		// Dropping then setting into an empty map, plus the upstream's
		// remaining headers, is the same as setting over them.
		src, dst := upstream(), http.Header{}
		names.DropResponseHeaders(src, &d)
		names.SetResponseHeaders(dst, &d)
		for k, v := range src {
			dst[k] = append(dst[k], v...)
		}
		if !reflect.DeepEqual(want, dst) {
			t.Fatalf("request %d drop+set:\n got %v\nwant %v", i, dst, want)
		}
		wantUp, gotUp := r.Header.Clone(), r.Header.Clone()
		d.SetUpstreamHeaders(wantUp)
		names.SetUpstreamHeaders(gotUp, &d)
		if !reflect.DeepEqual(wantUp, gotUp) {
			t.Fatalf("request %d upstream headers:\n got %v\nwant %v", i, gotUp, wantUp)
		}
	}
}
