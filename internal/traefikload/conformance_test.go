package traefikload_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/internal/clocktest"
)

// pluginPlane runs the conformance suite through the plugin as Traefik runs
// it: loaded by Traefik's loader, interpreted by Yaegi v0.16.1, configured
// with policyFile, called by compiled code with the request net/http's
// server makes of the case's bytes, in front of a Traefik-style reverse
// proxy to a real service. The plugin's clock is the case's: sleeps in a
// case move it (conformance.Clocked).
type pluginPlane struct{}

type pluginInstance struct {
	h      http.Handler
	clock  *clocktest.Clock
	up     *upstream
	down   string // where nothing listens
	isDown bool   // this step's service cannot be reached

	// what the proxy was handed: the plugin forwarded the request
	forwarded *http.Request
}

func (pluginPlane) Start(t testing.TB, policyPath string) conformance.Instance {
	p := loadPlugin(t)
	in := &pluginInstance{clock: clocktest.New(time.Now()), up: startUpstream(t), down: closedAddr(t)}
	ctx := withClock(context.Background(), in.clock.Now)
	h, err := p.New(ctx, http.HandlerFunc(in.proxy), map[string]any{"policyFile": policyPath}, uniqueName("conformance"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
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

func (in *pluginInstance) Advance(d time.Duration) { in.clock.Advance(d) }

func (in *pluginInstance) Close() {}

func (in *pluginInstance) Do(t testing.TB, req conformance.SentRequest, up conformance.Upstream) conformance.Response {
	in.up.script(up.Status, up.Delay)
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

// TestConformance: the interpreted plugin passes the conformance suite.
func TestConformance(t *testing.T) {
	ran := conformance.Run(t, pluginPlane{}, conformance.Options{Unsupported: unsupported})
	t.Logf("conformance: %d cases through the plugin interpreted by Yaegi v0.16.1", ran)
}
