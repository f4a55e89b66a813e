package sidecar_test

import (
	"bytes"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/internal/clocktest"
	"github.com/contentguard/contentguard/sidecar"
)

// httpPlane runs the conformance suite against the sidecar over real HTTP:
// each instance is a sidecar on loopback in front of a scripted upstream,
// each request is written byte for byte from the case's peer address, and
// the upstream reports what it received.
//
// At most a few instances run at once: a hundred parallel sidecars would
// starve each other on a two-core machine running -race (the cases' own
// time is each instance's clock, but upstream timeouts are real).
type httpPlane struct {
	slots   chan struct{}
	netHTTP bool // Options.DisableFastPath
}

// httpInstance runs on its own clock (conformance.Clocked): the engine's
// rate limits, breakers and token checks read it; sockets keep real time.
type httpInstance struct {
	sc *running
	up *fakeUpstream
	*clocktest.Clock
}

func (pl httpPlane) Start(t testing.TB, policyPath string) conformance.Instance {
	pl.slots <- struct{}{}
	t.Cleanup(func() { <-pl.slots }) // registered first, so it runs last
	up := startUpstream(t)
	clock := clocktest.New(time.Now())
	sc := startSidecar(t, sidecar.Options{Policy: loadPolicy(t, policyPath), Upstream: up.URL, DisableFastPath: pl.netHTTP, Now: clock.Now})
	return &httpInstance{sc: sc, up: up, Clock: clock}
}

func (in *httpInstance) Close() { in.sc.stop() }

func (in *httpInstance) Do(t testing.TB, req conformance.SentRequest, up conformance.Upstream) conformance.Response {
	in.up.script(up.Status, up.Delay, up.Down)
	refusedBefore := in.up.ln.refused.Load()
	rq := rawRequest{Method: req.Method, Target: req.Path, Header: req.Header, Peer: req.Peer, Wire: req}
	if req.BodyBytes > 0 {
		rq.Body = bytes.Repeat([]byte("x"), req.BodyBytes)
	}
	resp := send(t, in.sc.addr, rq)
	got := in.up.take()
	out := conformance.Response{Status: resp.Status, Header: resp.Header, Body: resp.Body}
	switch {
	case len(got) > 1:
		t.Fatalf("the upstream received %d requests for one", len(got))
	case len(got) == 1:
		out.Forwarded = true
		out.UpstreamHeader = got[0].Header
		out.UpstreamPath = got[0].Path
	case in.up.ln.refused.Load() > refusedBefore:
		// The sidecar reached a down upstream: it forwarded, nothing arrived.
		out.Forwarded = true
		out.UpstreamHeader = http.Header{}
	}
	if up.Down {
		in.up.script(0, 0, false)
	}
	return out
}

// unsupported are the cases that cannot run over HTTP, through either path,
// with why; each has a test of its own.
var unsupported = map[string]string{
	"raw-header-bytes": "a CR LF inside a header value ends the header on the wire: the sidecar receives two " +
		"well-formed headers, so 'X-Injected' is an ordinary client header there; TestRawHeaderInjection " +
		"sends those bytes and asserts the sidecar's answer instead",
	"invalid-target-escape": "net/http refuses a request target with an invalid percent-escape with its own " +
		"text/plain 400 before any handler runs (the fast path leaves such targets to it): refused and never " +
		"forwarded, but not problem+json; TestInvalidTargetEscapeIsRefused asserts that",
}

// TestConformance: the sidecar over real HTTP, on its fast path (handing
// over to net/http where it does), passes every case of the suite.
func TestConformance(t *testing.T) {
	conformance.Run(t, httpPlane{slots: make(chan struct{}, 4)}, conformance.Options{Unsupported: unsupported})
}

// TestConformanceNetHTTP: the same, with every request served by net/http
// and httputil.ReverseProxy (--no-fast-path).
func TestConformanceNetHTTP(t *testing.T) {
	conformance.Run(t, httpPlane{slots: make(chan struct{}, 4), netHTTP: true}, conformance.Options{Unsupported: netHTTPUnsupported})
}

// netHTTPUnsupported adds what only net/http's own server decides.
var netHTTPUnsupported = func() map[string]string {
	m := map[string]string{
		"leading-empty-line": "net/http's server ignores an empty line before a request line only after a POST " +
			"(Go's server.go); the fast path, which serves every connection first, ignores it always. " +
			"TestEmptyLineBeforeRequestLine holds both",
	}
	for k, v := range unsupported {
		m[k] = v
	}
	return m
}()

func conformancePolicy(name string) string {
	return filepath.Join(conformance.Dir(), "policies", name)
}
