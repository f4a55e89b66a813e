package traefikload_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/internal/benchcpu"
)

// benchPolicy is the engine benchmarks' policy (edge/testdata/bench.yaml):
// request IDs, CORS, strict security headers, JWT and API keys, a rate
// limit on every authenticated route.
var benchPolicy = filepath.Join("..", "..", "edge", "testdata", "bench.yaml")

// service stands for Traefik's proxy with a quick service behind it: it
// checks that the request arrived with what the policy forwards, and
// answers 200 with a Content-Length, as a proxied answer has.
type service struct {
	tb      testing.TB
	forward string // a header that must arrive ("" for none)
}

func (s service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.forward != "" && r.Header.Get(s.forward) == "" {
		s.tb.Errorf("the service got no %s", s.forward)
	}
	if r.Header.Get("X-Request-ID") == "" {
		s.tb.Error("the service got no request id")
	}
	w.Header()["Content-Type"] = []string{"application/json"}
	w.Header()["Content-Length"] = []string{"2"}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("{}"))
}

func mintBenchToken(tb testing.TB, scope string) string {
	m, err := conformance.NewMinter(filepath.Join(conformance.Dir(), "testdata", "keys"))
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := m.Mint(conformance.Token{Scope: scope})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// BenchmarkPlugin measures one request through the interpreted plugin, as
// Traefik calls it: compiled code calls ServeHTTP, the plugin decides and
// calls the next handler (compiled), which writes the answer through the
// plugin's writer. Every request must come back with a fresh request id
// and, where the route has one, the rate-limit headers, and reach the
// service with the verified identity.
//
//	go test -run '^$' -bench Plugin -benchmem ./internal/traefikload
func BenchmarkPlugin(b *testing.B) {
	p := loadPlugin(b)
	get := func(path string, h http.Header) *http.Request {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = "198.51.100.7:40000"
		for k, v := range h {
			r.Header[k] = v
		}
		return r
	}
	run := func(b *testing.B, path, forward string, h http.Header, status int, limited bool) {
		next := service{tb: b, forward: forward}
		mw, err := p.New(context.Background(), next, map[string]any{"policyFile": benchPolicy}, uniqueName("bench"))
		if err != nil {
			b.Fatal(err)
		}
		ref := get(path, h)
		prev := ""
		b.ReportAllocs()
		b.ResetTimer()
		defer benchcpu.Report(b)()
		for i := 0; i < b.N; i++ {
			// What the service may change (forwarded headers) is the
			// request's own: a fresh header map per request, as net/http
			// makes one.
			r := ref.Clone(context.Background())
			w := httptest.NewRecorder()
			mw.ServeHTTP(w, r)
			if w.Code != status {
				b.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
			}
			id := w.Header().Get("X-Request-Id")
			if id == "" || id == prev {
				b.Fatalf("request id %q after %q: not fresh", id, prev)
			}
			prev = id
			if limited && w.Header().Get("Ratelimit-Remaining") == "" {
				b.Fatal("no rate-limit headers")
			}
		}
	}
	const api = "/api/v1/jobs/42"
	b.Run("JWTCached", func(b *testing.B) {
		run(b, api, "X-Auth-Subject", http.Header{"Authorization": {"Bearer " + mintBenchToken(b, "read write")}}, http.StatusOK, true)
	})
	b.Run("APIKey", func(b *testing.B) {
		run(b, api, "X-Auth-Subject", http.Header{"X-Api-Key": {"cg-conformance-read-key"}}, http.StatusOK, true)
	})
	b.Run("Public", func(b *testing.B) {
		run(b, "/healthz", "", http.Header{}, http.StatusOK, false)
	})
	b.Run("Rejected401", func(b *testing.B) {
		run(b, api, "", http.Header{}, http.StatusUnauthorized, false)
	})
}
