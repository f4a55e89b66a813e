package kong

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/Kong/go-pdk/test"
)

// FuzzAccess sends arbitrary methods, targets and headers through the
// plugin over the harness: it never panics, every request is either
// refused with a problem (or a preflight's 204) or forwarded with the
// request ID both ways, forged claim headers never reach the upstream, and
// the calls stay within the budget.
func FuzzAccess(f *testing.F) {
	f.Add("GET", "/healthz", "X-Request-ID", "abc")
	f.Add("POST", "/api/v1/analyze?x=1", "X-API-Key", "cg-conformance-rw-key")
	f.Add("GET", "/api/v1/../../admin/", "Authorization", "Bearer a.b.c")
	f.Add("PATCH", "//admin//users/./x", "X_Auth_Subject", "root")
	f.Add("GET", "/healthz", "Content-Length", "-1")
	_, c := startInstance(f, NodeOptions{}, map[string]any{"policy_file": conformancePolicy("standard.yaml")})
	f.Fuzz(func(t *testing.T, method, target, name, value string) {
		// What go-pdk can carry (protobuf strings are UTF-8) and what the
		// harness can represent.
		for _, s := range []string{method, target, name, value} {
			if !utf8.ValidString(s) {
				return
			}
		}
		if !strings.HasPrefix(target, "/") {
			return
		}
		if u, err := url.Parse("http://edge.test" + target); err != nil || !utf8.ValidString(u.Path) {
			return // the harness hands over the decoded path
		}
		h := http.Header{}
		h.Add(name, value)
		h.Set("X-Auth-Subject", "forged")
		h.Set("Host", "edge.test")
		req := test.Request{Method: method, Url: "http://edge.test" + target, Headers: h}
		if method != http.MethodGet {
			req.Body = []byte{'-'}
		}
		x, err := newExchange(t, req)
		if err != nil {
			return
		}
		x.do(c, test.Response{Status: http.StatusOK, Headers: http.Header{"Content-Type": {"text/plain"}}})
		res := x.ClientRes
		id := res.Headers.Get("X-Request-Id")
		if id == "" {
			t.Fatalf("no request id: status %d headers %v", res.Status, res.Headers)
		}
		if x.exited {
			if res.Status == http.StatusNoContent {
				return
			}
			var p struct {
				Status    int    `json:"status"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(res.Body, &p); err != nil || p.Status != res.Status || p.RequestID != id ||
				res.Headers.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("refusal %d %v is not the engine's problem: %s (%v)", res.Status, res.Headers, res.Body, err)
			}
			return
		}
		if got := x.ServiceReq.Headers.Get("X-Request-Id"); got != id {
			t.Fatalf("upstream request id %q, client's %q", got, id)
		}
		if got := x.ServiceReq.Headers.Get("X-Auth-Subject"); got == "forged" {
			t.Fatal("the forged X-Auth-Subject reached the upstream")
		}
		// Five reads, three writes, a clear per forged header (at most
		// two here) and set_path.
		if n := len(x.callsOf("access")); n > 11 {
			t.Fatalf("%d PDK calls in Access: %q", n, x.callsOf("access"))
		}
	})
}
