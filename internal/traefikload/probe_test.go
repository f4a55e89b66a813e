package traefikload_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// probeSource runs single parts of the decision path b.N times inside the
// plugin's interpreter, to see where an interpreted decision spends its
// time (Yaegi has no profiler).
const probeSource = `package probe

import (
	"context"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/edge/clientip"
	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/internal/requestid"
	"github.com/contentguard/contentguard/edge/urlpath"
	"github.com/contentguard/contentguard/policy/yamlnode"
)

var eng *edge.Engine
var token string

func Setup(path, tok string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	p, err := yamlnode.Decode(path, data)
	if err != nil {
		return err.Error()
	}
	p.BaseDir = "` + "BASEDIR" + `"
	e, err := edge.New(context.Background(), p, edge.Options{})
	if err != nil {
		return err.Error()
	}
	eng = e
	token = tok
	return ""
}

func req(h http.Header) edge.Request {
	return edge.Request{Method: "GET", Host: "api", Path: "/api/v1/jobs/42", Header: h, Peer: netip.MustParseAddr("198.51.100.7"), ContentLength: -1}
}

func CheckJWT(n int) {
	r := req(http.Header{"Authorization": {"Bearer " + token}})
	ctx := context.Background()
	for i := 0; i < n; i++ {
		d := eng.Check(ctx, r)
		eng.Observe(&d, edge.Outcome{Status: 200})
	}
}

func CheckJWTDecideOnly(n int) {
	r := req(http.Header{"Authorization": {"Bearer " + token}})
	r.DecideOnly = true
	ctx := context.Background()
	for i := 0; i < n; i++ {
		eng.Check(ctx, r)
	}
}

func CheckAPIKey(n int) {
	r := req(http.Header{"X-Api-Key": {"cg-conformance-read-key"}})
	r.DecideOnly = true
	ctx := context.Background()
	for i := 0; i < n; i++ {
		eng.Check(ctx, r)
	}
}

func CheckPublic(n int) {
	r := req(http.Header{})
	r.Path = "/healthz"
	r.DecideOnly = true
	ctx := context.Background()
	for i := 0; i < n; i++ {
		eng.Check(ctx, r)
	}
}

func Check401(n int) {
	r := req(http.Header{})
	r.DecideOnly = true
	ctx := context.Background()
	for i := 0; i < n; i++ {
		eng.Check(ctx, r)
	}
}

func IDs(n int) {
	g, _ := requestid.ForFormat("uuidv7")
	for i := 0; i < n; i++ {
		g()
	}
}

func IDsExpr(n int) {
	g := &requestid.V7Generator{}
	for i := 0; i < n; i++ {
		(*requestid.V7Generator).New(g)
	}
}

func ClientIP(n int) {
	r, _ := clientip.New(nil, nil)
	peer := netip.MustParseAddr("198.51.100.7")
	h := http.Header{}
	for i := 0; i < n; i++ {
		(*clientip.Resolver).ClientIP(r, peer, h)
	}
}

func Valid(n int) {
	for i := 0; i < n; i++ {
		requestid.Valid("0123456789abcdef")
	}
}

func Normalize(n int) {
	for i := 0; i < n; i++ {
		urlpath.Normalize("/api/v1/jobs/42")
	}
}

func Memory(n int) {
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	l := ratelimit.Limit{Rate: 1000000, Per: time.Second}
	ctx := context.Background()
	for i := 0; i < n; i++ {
		m.Allow(ctx, "read|ip:198.51.100.7", l, time.Now())
	}
}

func Breaker(n int) {
	b := breaker.NewRegistry(breaker.Settings{ConsecutiveFailures: 5, OpenFor: time.Second}).Get("x")
	for i := 0; i < n; i++ {
		t, _, _ := b.Allow()
		b.Done(t, true)
	}
}

type bare struct{ next http.Handler }

func (m *bare) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.next.ServeHTTP(w, r) }

type wrapping struct{ next http.Handler }

type rw struct {
	w      http.ResponseWriter
	status int
}

func (x *rw) Header() http.Header { return x.w.Header() }
func (x *rw) WriteHeader(code int) {
	x.status = code
	x.w.WriteHeader(code)
}
func (x *rw) Write(b []byte) (int, error) { return x.w.Write(b) }

func (m *wrapping) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.next.ServeHTTP(&rw{w: w}, r)
}

type pooled struct {
	next http.Handler
	pool sync.Pool
}

type prw struct {
	w      http.ResponseWriter
	status int
	self   http.ResponseWriter
}

func (x *prw) Header() http.Header { return x.w.Header() }
func (x *prw) WriteHeader(code int) {
	x.status = code
	x.w.WriteHeader(code)
}
func (x *prw) Write(b []byte) (int, error) { return x.w.Write(b) }

func (m *pooled) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x, _ := m.pool.Get().(*prw)
	if x == nil {
		x = &prw{}
		x.self = x
	}
	x.w = w
	m.next.ServeHTTP(x.self, r)
	x.w = nil
	m.pool.Put(x)
}

func Pooled(next http.Handler) http.Handler { return &pooled{next: next} }

func Bare(next http.Handler) http.Handler     { return &bare{next: next} }
func Wrapping(next http.Handler) http.Handler { return &wrapping{next: next} }

func SetHeaders(n int) {
	d := eng.Check(context.Background(), req(http.Header{"Authorization": {"Bearer " + token}}))
	eng.Observe(&d, edge.Outcome{Status: 200})
	for i := 0; i < n; i++ {
		up := http.Header{"Authorization": {"x"}, "Accept": {"*/*"}, "User-Agent": {"curl"}, "X-Request-Id": {"x"}}
		d.SetUpstreamHeaders(up)
		d.SetResponseHeaders(http.Header{})
	}
}
`

// BenchmarkYaegiParts times parts of an interpreted decision (the
// engine benchmarks' policy, a cached ES256 token): what docs/traefik.md's
// speed notes are measured with.
//
//	go test -run '^$' -bench YaegiParts -benchmem ./internal/traefikload
func BenchmarkYaegiParts(b *testing.B) {
	p := loadPlugin(b)
	base, _ := filepath.Abs(filepath.Dir(benchPolicy))
	src := strings.ReplaceAll(probeSource, "BASEDIR", base)
	if _, err := p.Interp.Eval(src); err != nil {
		b.Fatal(err)
	}
	setup, err := p.Interp.Eval("probe.Setup")
	if err != nil {
		b.Fatal(err)
	}
	if msg := setup.Interface().(func(string, string) string)(benchPolicy, mintBenchToken(b, "read write")); msg != "" {
		b.Fatal(msg)
	}
	for _, name := range []string{"Bare", "Wrapping", "Pooled"} {
		v, err := p.Interp.Eval("probe." + name)
		if err != nil {
			b.Fatal(err)
		}
		mk := v.Interface().(func(http.Handler) http.Handler)
		h := mk(service{tb: b})
		quiet := mk(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		b.Run(name+"Quiet", func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				quiet.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
		b.Run(name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("X-Request-ID", "x")
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
	for _, name := range []string{"CheckJWT", "CheckJWTDecideOnly", "CheckAPIKey", "CheckPublic", "Check401", "IDs", "IDsExpr", "ClientIP", "Valid", "Normalize", "Memory", "Breaker", "SetHeaders"} {
		v, err := p.Interp.Eval("probe." + name)
		if err != nil {
			b.Fatal(err)
		}
		f := v.Interface().(func(int))
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			f(b.N)
		})
	}
}
