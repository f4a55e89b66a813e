package kong

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/Kong/go-pdk"
	"github.com/Kong/go-pdk/test"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/internal/benchcpu"
)

// benchPolicy is the engine benchmarks' policy (the conformance standard
// policy with limits that never trip) plus a route whose limit is spent
// after one request, with edits (old, new pairs), written where its key
// file resolves.
func benchPolicy(tb testing.TB, edits ...string) string {
	tb.Helper()
	return policyVariant(tb, filepath.Join("..", "..", "edge", "testdata", "bench.yaml"), append([]string{
		"  routes:\n", `  routes:
    - name: limited
      match: {path: /limited}
      auth: none
      rateLimit: {key: ip, rate: 1, per: 1h}
`}, edits...)...)
}

// policyVariant writes the policy file src with edits (old, new pairs, each
// old found exactly once) and its JWKS file named by absolute path, and
// returns the new file's path.
func policyVariant(tb testing.TB, src string, edits ...string) string {
	tb.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	doc := regexp.MustCompile(`jwks: \{file: [^}]*jwks\.json\}`).ReplaceAllString(string(data),
		"jwks: {file: "+filepath.Join(conformance.Dir(), "testdata", "keys", "jwks.json")+"}")
	for i := 0; i+1 < len(edits); i += 2 {
		if n := strings.Count(doc, edits[i]); n != 1 {
			tb.Fatalf("%s: %q occurs %d times", src, edits[i], n)
		}
		doc = strings.Replace(doc, edits[i], edits[i+1], 1)
	}
	path := filepath.Join(tb.TempDir(), filepath.Base(src))
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkPlugin runs requests through the plugin's Access and Log phases
// over go-pdk's test harness, as Kong would, and reports the PDK calls
// (round trips to Kong) each phase makes beside ns/op, cpu-ns/op (the
// process's CPU time: wall time on a shared machine includes waiting for a
// core) and allocs/op. The times include the harness: its socket is an in-process pipe with a
// goroutine answering each call (see BenchmarkHarnessCall for one call's
// cost), where Kong's is a Unix socket to NGINX's Lua.
//
// The first four cases are the paths on the read route (limited by
// client address) under strict security headers; the last two send the
// cached JWT to the write route (limited by subject), under those headers
// and under custom ones, which do not depend on TLS.
func BenchmarkPlugin(b *testing.B) {
	start := func(policy string) *Config {
		_, c := startInstance(b, NodeOptions{}, map[string]any{"policy_file": policy, "upstream": "content-api"})
		return c
	}
	strict := start(benchPolicy(b))
	custom := start(benchPolicy(b, "securityHeaders: strict",
		"securityHeaders: {X-Content-Type-Options: nosniff, X-Frame-Options: DENY, Content-Security-Policy: \"default-src 'none'\"}"))
	jwt := mint(b, conformance.Token{Sub: "alice", Scope: "read"})
	writer := mint(b, conformance.Token{Sub: "alice", Scope: "read write"})
	write := test.Request{Method: http.MethodPost, Url: "http://edge.test/api/v1/jobs",
		Headers: http.Header{"Authorization": {writer}, "Content-Length": {"2"}}, Body: []byte("{}")}
	for _, bc := range []struct {
		name    string
		c       *Config
		req     test.Request
		allowed bool
	}{
		{"no-auth", strict, test.Request{Url: "http://edge.test/healthz"}, true},
		{"api-key", strict, test.Request{Url: "http://edge.test/api/v1/jobs", Headers: http.Header{"X-Api-Key": {"cg-conformance-read-key"}}}, true},
		{"cached-jwt", strict, test.Request{Url: "http://edge.test/api/v1/jobs", Headers: http.Header{"Authorization": {jwt}}}, true},
		{"rate-limited", strict, test.Request{Url: "http://edge.test/limited"}, false},
		{"cached-jwt-subject-key", strict, write, true},
		{"cached-jwt-subject-key-custom-headers", custom, write, true},
	} {
		c := bc.c
		b.Run(bc.name, func(b *testing.B) {
			// Warm up: the JWT's verification is cached, the limited
			// route's budget spent.
			send(b, c, bc.req, test.Response{})
			up := test.Response{Status: http.StatusOK, Headers: http.Header{"Content-Type": {"application/json"}}}
			var access, log int
			b.ReportAllocs()
			b.ResetTimer()
			defer benchcpu.Report(b)()
			for i := 0; i < b.N; i++ {
				x := send(b, c, bc.req, up)
				if x.exited == bc.allowed {
					b.Fatalf("exited=%v status %d: %s", x.exited, x.ClientRes.Status, x.ClientRes.Body)
				}
				access += len(x.callsOf("access"))
				log += len(x.callsOf("log"))
			}
			b.ReportMetric(float64(access)/float64(b.N), "access-calls/op")
			b.ReportMetric(float64(log)/float64(b.N), "log-calls/op")
		})
	}
}

// BenchmarkHarnessCall is one PDK call through the harness's socket
// (kong.request.get_method), for reading BenchmarkPlugin's times: what the
// plugin costs itself is about its time less its calls times this.
func BenchmarkHarnessCall(b *testing.B) {
	x, err := newExchange(b, test.Request{Method: http.MethodGet, Url: "http://edge.test/", Headers: http.Header{}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	x.run("bench", func(kong *pdk.PDK) {
		b.ResetTimer()
		defer benchcpu.Report(b)()
		for i := 0; i < b.N; i++ {
			if _, err := kong.Request.GetMethod(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
