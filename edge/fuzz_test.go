package edge_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/policy/policyfile"
)

// FuzzCheck: whatever arrives, the engine answers — never a panic — and
// every rejection is valid problem+json carrying the request ID, and no
// header value it emits could split a response.
func FuzzCheck(f *testing.F) {
	p, err := policyfile.Load(filepath.Join(conformance.Dir(), "policies", "standard.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	e, err := edge.New(context.Background(), p, edge.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	f.Add("GET", "/api/v1/../../admin/", "Bearer x.y.z", "203.0.113.9", "req-1", "https://a.example.org")
	f.Add("OPTIONS", "/api/v1/analyze", "", "2001:db8::1", "", "null")
	f.Add("POST", "/%2e%2e/%2F/admin", "Bearer eyJhbGciOiJub25lIn0.e30.", "::ffff:10.0.0.1", "\r\nx", "")
	f.Fuzz(func(t *testing.T, method, path, authz, peer, reqID, origin string) {
		addr, err := netip.ParseAddr(peer)
		if err != nil {
			addr = netip.MustParseAddr("192.0.2.1")
		}
		h := http.Header{}
		h.Set("Authorization", authz)
		h.Set("X-Request-ID", reqID)
		h.Set("Origin", origin)
		h.Set("Access-Control-Request-Method", "POST")
		d := e.Check(context.Background(), edge.Request{Method: method, Path: path, Header: h, Peer: addr, ContentLength: -1})
		for _, kv := range append(append([][2]string{}, d.ResponseHeaders...), d.UpstreamHeaders...) {
			if strings.ContainsAny(kv[0]+kv[1], "\r\n\x00") {
				t.Fatalf("header %q: %q could split the response", kv[0], kv[1])
			}
		}
		if d.Allow {
			e.Observe(&d, edge.Outcome{Status: 200})
			return
		}
		if d.Status == http.StatusNoContent {
			return
		}
		var pb struct {
			Status    int    `json:"status"`
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(d.Body, &pb); err != nil || pb.Status != d.Status || pb.RequestID != d.RequestID || d.RequestID == "" {
			t.Fatalf("rejection %d is not a problem with the request id: %v %s", d.Status, err, d.Body)
		}
	})
}
