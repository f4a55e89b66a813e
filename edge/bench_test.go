package edge_test

import (
	"context"
	"net/http"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/internal/benchcpu"
	"github.com/contentguard/contentguard/policy/policyfile"
)

// benchEngine builds the engine for the conformance standard policy (the
// policy-v1.md example): request IDs, CORS, strict headers, JWT and API keys,
// and a rate limit on every authenticated route.
func benchEngine(b *testing.B, opts edge.Options) *edge.Engine {
	b.Helper()
	p, err := policyfile.Load(filepath.Join("testdata", "bench.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	e, err := edge.New(context.Background(), p, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.Close)
	return e
}

func benchToken(b *testing.B, scope string) string {
	m, err := conformance.NewMinter(filepath.Join(conformance.Dir(), "testdata", "keys"))
	if err != nil {
		b.Fatal(err)
	}
	tok, err := m.Mint(conformance.Token{Scope: scope})
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

func runCheck(b *testing.B, e *edge.Engine, r edge.Request, wantAllow bool) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer benchcpu.Report(b)()
	for i := 0; i < b.N; i++ {
		d := e.Check(ctx, r)
		if d.Allow != wantAllow {
			b.Fatalf("allow=%v reason=%s", d.Allow, d.Reason)
		}
		if d.Allow {
			e.Observe(&d, edge.Outcome{Status: 200})
		}
	}
}

// BenchmarkCheck measures one full decision. "JWTCached" is the common case:
// a returning client's ES256 token, a rate limit that never trips, a
// generated request ID, strict headers and the circuit breaker.
func BenchmarkCheck(b *testing.B) {
	peer := netip.MustParseAddr("198.51.100.7")
	get := func(h http.Header) edge.Request {
		return edge.Request{Method: "GET", Host: "api", Path: "/api/v1/jobs/42", Header: h, Peer: peer, ContentLength: -1}
	}
	b.Run("JWTCached", func(b *testing.B) {
		e := benchEngine(b, edge.Options{})
		h := http.Header{"Authorization": {"Bearer " + benchToken(b, "read write")}}
		runCheck(b, e, get(h), true)
	})
	b.Run("JWTCold", func(b *testing.B) {
		// The cache is off: every decision verifies the ES256 signature.
		e := benchEngine(b, edge.Options{Auth: auth.Options{CacheSize: -1}})
		h := http.Header{"Authorization": {"Bearer " + benchToken(b, "read write")}}
		runCheck(b, e, get(h), true)
	})
	b.Run("APIKey", func(b *testing.B) {
		e := benchEngine(b, edge.Options{})
		runCheck(b, e, get(http.Header{"X-Api-Key": {"cg-conformance-read-key"}}), true)
	})
	b.Run("NoAuth", func(b *testing.B) {
		e := benchEngine(b, edge.Options{})
		r := edge.Request{Method: "GET", Host: "api", Path: "/healthz", Header: http.Header{}, Peer: peer, ContentLength: -1}
		runCheck(b, e, r, true)
	})
	b.Run("Rejected401", func(b *testing.B) {
		e := benchEngine(b, edge.Options{})
		runCheck(b, e, get(http.Header{}), false)
	})
	b.Run("JWTCachedParallel", func(b *testing.B) {
		e := benchEngine(b, edge.Options{})
		h := http.Header{"Authorization": {"Bearer " + benchToken(b, "read write")}}
		r := get(h)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				d := e.Check(ctx, r)
				if !d.Allow {
					b.Errorf("denied: %s", d.Reason)
					return
				}
				e.Observe(&d, edge.Outcome{Status: 200})
			}
		})
	})
}
