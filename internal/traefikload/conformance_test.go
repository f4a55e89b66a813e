package traefikload_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/policy/policyfile"
)

// pluginPlane runs the conformance suite through the plugin as Traefik runs
// it: loaded by Traefik's loader, interpreted by Yaegi v0.16.1, configured
// with policyFile, called by compiled code with the request net/http's
// server makes of the case's bytes, in front of a Traefik-style reverse
// proxy to a real service. The plugin's clock is the case's (WithClock):
// sleeps in a case move it (conformance.Clocked), and a service scripted to
// answer later than the policy's upstream timeout fires the middleware's
// timer itself.
type pluginPlane struct{}

// building serialises New, as Traefik does.
var building sync.Mutex

type pluginInstance struct {
	h       http.Handler
	clock   *planeClock
	timeout time.Duration // the policy's upstream timeout
	up      *upstream
	down    string // where nothing listens
	isDown  bool   // this step's service cannot be reached

	// what the proxy was handed: the plugin forwarded the request
	forwarded *http.Request
}

func (pluginPlane) Start(t testing.TB, policyPath string) conformance.Instance {
	p := loadPlugin(t)
	pol, err := policyfile.Load(policyPath)
	if err != nil {
		t.Fatal(err)
	}
	in := &pluginInstance{clock: newPlaneClock(), timeout: pol.Spec.Upstream.Timeout, up: startUpstream(t), down: closedAddr(t)}
	ctx := withClock(context.Background(), in.clock)
	// Traefik builds middlewares one at a time, from the goroutine that
	// applies a configuration, while other requests are served.
	building.Lock()
	h, err := p.New(ctx, http.HandlerFunc(in.proxy), map[string]any{"policyFile": policyPath}, uniqueName("conformance"))
	building.Unlock()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// The case's time starts now: New may have waited for another
	// middleware's warm-up, and the case's tokens are minted from now on.
	in.clock.Clock.Set(time.Now())
	in.h = h
	return in
}

// proxy stands for the rest of Traefik's chain: the service's proxy.
func (in *pluginInstance) proxy(w http.ResponseWriter, r *http.Request) {
	in.forwarded = r.Clone(context.Background())
	target := in.up.url
	if in.isDown {
		target = &url.URL{Scheme: "http", Host: in.down}
	}
	traefikProxy(target, http.DefaultTransport).ServeHTTP(w, r)
}

// Sleeps in a case move the instance's clock.
var _ conformance.Clocked = (*pluginInstance)(nil)

func (in *pluginInstance) Now() time.Time { return in.clock.Now() }

func (in *pluginInstance) Advance(d time.Duration) { in.clock.Advance(d) }

func (in *pluginInstance) Close() {}

func (in *pluginInstance) Do(t testing.TB, req conformance.SentRequest, up conformance.Upstream) conformance.Response {
	var late func()
	if up.Delay > in.timeout {
		late = in.clock.fire
	}
	in.up.script(up.Status, late)
	in.isDown = up.Down
	in.forwarded = nil
	var body []byte
	if req.BodyBytes > 0 {
		body = bytes.Repeat([]byte("x"), req.BodyBytes)
	}
	r, err := wireRequest(req.Method, req.Path, req.Proto, req.Header, body, req.NoHost)
	if err != nil {
		t.Fatalf("net/http refuses the request: %v", err)
	}
	r.RemoteAddr = net.JoinHostPort(req.Peer, "40000")
	rec := httptest.NewRecorder()
	in.h.ServeHTTP(rec, r)
	res := rec.Result()
	out := conformance.Response{Status: res.StatusCode, Header: res.Header, Body: rec.Body.Bytes()}
	if in.forwarded != nil {
		out.Forwarded = true
		out.UpstreamHeader = in.forwarded.Header
		out.UpstreamPath = in.forwarded.URL.EscapedPath()
		if got := in.up.take(); len(got) == 1 {
			// What the service itself received, through the proxy.
			out.UpstreamHeader = got[0].Header
			out.UpstreamPath = got[0].URL.EscapedPath()
		}
	}
	return out
}

// unsupported are the cases the in-process plane cannot send, with why.
var unsupported = map[string]string{
	"raw-header-bytes": "a CR LF inside a header value ends the header on the wire: net/http's server, " +
		"Traefik's entrypoint, parses two well-formed headers before any middleware runs",
	"invalid-target-escape": "Traefik's entrypoint (net/http) refuses a request target with an invalid " +
		"percent-escape with its own 400 before any middleware runs",
	"leading-empty-line": "net/http's server, Traefik's entrypoint, decides on empty lines before a " +
		"request line before any middleware runs",
}

// TestConformance: the interpreted plugin passes the conformance suite,
// four cases at a time (each case a middleware of its own, all in the one
// interpreter of the plugin, as in Traefik).
func TestConformance(t *testing.T) {
	ran := conformance.Run(t, pluginPlane{}, conformance.Options{Unsupported: unsupported, Clients: 4})
	t.Logf("conformance: %d cases through the plugin interpreted by Yaegi v0.16.1", ran)
}

// TestConformanceConcurrentClients: the cases under 64 concurrent clients,
// every case's first requests racing the others' and new middlewares being
// built meanwhile. Run with -race (make traefik): a data race on the host
// side — in the plugin's state or inside Yaegi — fails it. The breaker
// policy's cases are left to TestConformance: their service answers race
// a 300 ms upstream timeout, which 64 interpreted clients on a two-core
// machine under the race detector can outlast.
func TestConformanceConcurrentClients(t *testing.T) {
	ran := conformance.Run(t, pluginPlane{}, conformance.Options{
		Unsupported: unsupported,
		Clients:     64,
		Only:        func(c conformance.Case) bool { return c.Policy != "breaker.yaml" },
	})
	t.Logf("conformance: %d cases through the plugin interpreted by Yaegi v0.16.1, 64 clients at once", ran)
}
