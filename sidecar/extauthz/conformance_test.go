package extauthz_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/internal/grpctest"
	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/internal/tcptest"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar"
	"github.com/contentguard/contentguard/sidecar/extauthz"
	"github.com/contentguard/contentguard/xds"
)

// envoyPlane runs the conformance suite the way Envoy enforces a policy:
// each instance is `contentguard sidecar --ext-authz` (a sidecar.Server and
// this package's gRPC services on a loopback port) behind the Envoy that
// xds.Envoy configures for the policy, emulated (see envoy); every request
// is judged by a real Check call, and its outcome comes back to the
// breaker through a real access-log stream before the next request.
type envoyPlane struct{ slots chan struct{} }

type envoyInstance struct {
	envoy *envoy
	authz *extauthz.Server
	up    *scriptedUpstream
}

func (pl envoyPlane) Start(t testing.TB, policyPath string) conformance.Instance {
	pl.slots <- struct{}{}
	t.Cleanup(func() { <-pl.slots })
	p, err := policyfile.Load(policyPath)
	if err != nil {
		t.Fatal(err)
	}
	up := startScriptedUpstream(t)
	in := startEnvoy(t, p, up.addr)
	in.up = up
	return in
}

// startEnvoy is `contentguard sidecar --ext-authz` on policy p behind the
// emulated Envoy that xds.Envoy configures for it, whose cluster is
// upstream.
func startEnvoy(t testing.TB, p *policy.Policy, upstream string) *envoyInstance {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// The policy's upstream is where Envoy's cluster sends requests.
	p.Spec.Upstream.URL = "http://" + upstream
	srv, err := sidecar.New(ctx, sidecar.Options{Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	authz, err := extauthz.New(extauthz.Options{Engine: srv.Engine, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	addr := grpctest.Serve(t, "", authz.Register)
	res, err := xds.Envoy(p, xds.Options{ExtAuthz: addr})
	if err != nil {
		t.Fatalf("xds.Envoy: %v", err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &envoyInstance{envoy: newEnvoy(t, res, conn, upstream), authz: authz}
}

func (in *envoyInstance) Close() {}

func (in *envoyInstance) Do(t testing.TB, req conformance.SentRequest, up conformance.Upstream) conformance.Response {
	in.up.script(up)
	r := request{method: req.Method, target: req.Path, proto: req.Proto, header: req.Header, noHost: req.NoHost, peer: req.Peer, down: up.Down}
	if r.peer == "" {
		r.peer = "127.0.0.1"
	}
	if req.BodyBytes > 0 {
		r.body = bytes.Repeat([]byte("x"), req.BodyBytes)
		r.header = r.header.Clone()
		r.header.Set("Content-Length", itoa(req.BodyBytes))
	}
	x := in.envoy.serve(r)
	in.envoy.report(x)
	// Envoy streams the entry after the response; the next request of the
	// case must meet the breaker that heard it.
	if !polltest.Until(10*time.Second, func() bool { return in.authz.Pending() == 0 }) {
		t.Fatal("the access-log entry did not reach the breaker")
	}
	out := conformance.Response{Status: x.status, Header: x.header, Body: x.body, Forwarded: x.forwarded}
	if got := in.up.take(); got != nil {
		out.UpstreamHeader = got.Header
		out.UpstreamPath = got.URL.EscapedPath()
	} else if x.forwarded {
		out.UpstreamHeader = http.Header{}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// scriptedUpstream answers as the case's step says and records what it
// received.
type scriptedUpstream struct {
	addr string
	mu   sync.Mutex
	up   conformance.Upstream
	got  *http.Request
}

func startScriptedUpstream(t testing.TB) *scriptedUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &scriptedUpstream{addr: ln.Addr().String()}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return u
}

func (u *scriptedUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	u.mu.Lock()
	u.got = r
	up := u.up
	u.mu.Unlock()
	if up.Delay > 0 {
		select {
		case <-time.After(up.Delay):
		case <-r.Context().Done():
			return
		}
	}
	status := up.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "upstream says hello")
}

func (u *scriptedUpstream) script(up conformance.Upstream) {
	u.mu.Lock()
	u.up, u.got = up, nil
	u.mu.Unlock()
}

func (u *scriptedUpstream) take() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.got
	u.got = nil
	return r
}

// envoyCannot are the cases the emulation cannot run faithfully, by tag,
// with why.
var envoyCannot = map[string]string{
	"raw-header-bytes": "a CR LF inside a header value ends the header on the wire, and Envoy's HTTP/1 codec, " +
		"which is not emulated here, decides what it makes of the rest",
	"leading-empty-line": "whether Envoy's HTTP/1 codec skips an empty line before the request line is the codec's " +
		"to say, and the codec is not emulated",
}

// envoyDiffers are the cases Envoy answers before the engine is asked, by
// name, with why; docs/envoy.md says the same.
var envoyDiffers = map[string]string{
	"websocket upgrade is refused on a route without websocket":           upgradeFailed,
	"websocket upgrade reaches a route that allows it, nothing else does": upgradeFailed,
	"non-ASCII bytes are percent-encoded, not a way around a route":       rawNonASCII,
}

const rawNonASCII = "Envoy forwards the path its connection manager leaves (PathAsIs), and a raw non-ASCII byte " +
	"is not in normal form: the engine refuses the request (400 bad_path) where planes that forward the " +
	"normalised path read it percent-encoded — refused and never forwarded, but another answer"

const upgradeFailed = "Envoy refuses an upgrade to a protocol its listener does not take (403 upgrade_failed) before " +
	"ext_authz runs: the client gets the same 403 as problem+json, but without a request id, which only the engine makes"

// TestConformanceThroughExtAuthz: the whole suite through the ext_authz
// server, the way Envoy drives it; the breaker cases through access-log
// reports. Cases the plane cannot run are listed with why.
func TestConformanceThroughExtAuthz(t *testing.T) {
	cases, err := conformance.Load(conformance.Dir())
	if err != nil {
		t.Fatal(err)
	}
	run := map[string]bool{}
	for _, c := range cases {
		if why := envoyDiffers[c.Name]; why != "" {
			t.Logf("not run on the Envoy plane: %s (%s)", c.Name, why)
			continue
		}
		run[c.Name] = true
		for _, tag := range c.Tags {
			if _, ok := envoyCannot[tag]; ok {
				delete(run, c.Name) // conformance.Run logs it with the reason
			}
		}
	}
	t.Logf("Envoy ext_authz plane: %d of %d conformance cases run", len(run), len(cases))
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "envoy.md"))
	if err != nil {
		t.Fatal(err)
	}
	if claim := fmt.Sprintf("%d of %d cases run", len(run), len(cases)); !strings.Contains(string(doc), claim) {
		t.Errorf("docs/envoy.md does not say %q", claim)
	}
	if len(run) < len(cases)*9/10 {
		t.Errorf("only %d of %d cases run on the Envoy plane", len(run), len(cases))
	}
	conformance.Run(t, envoyPlane{slots: make(chan struct{}, 4)}, conformance.Options{
		Unsupported: envoyCannot,
		Only:        func(c conformance.Case) bool { return envoyDiffers[c.Name] == "" },
	})
}

// TestUpstreamProtocolErrorsOpenTheBreaker: an upstream that answers with
// bytes that are no HTTP response (Envoy: 502, flag UPE) is failing, not
// its clients: under breaker.yaml (three failures open it) the fourth
// request is refused by the engine, 503 circuit_open, and never forwarded.
func TestUpstreamProtocolErrorsOpenTheBreaker(t *testing.T) {
	var served atomic.Int64
	upstream := tcptest.Serve(t, func(c net.Conn) {
		defer c.Close()
		served.Add(1)
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			_, _ = io.WriteString(c, "HTTP/1.1 two hundred OK\r\n\r\n")
		}
	})
	p, err := policyfile.Load(filepath.Join(conformance.Dir(), "policies", "breaker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	in := startEnvoy(t, p, upstream)
	send := func() *exchange {
		x := in.envoy.serve(request{method: http.MethodGet, target: "/work", proto: "HTTP/1.1", header: http.Header{}, peer: "127.0.0.1"})
		in.envoy.report(x)
		if !polltest.Until(10*time.Second, func() bool { return in.authz.Pending() == 0 }) {
			t.Fatal("the access-log entry did not reach the breaker")
		}
		return x
	}
	for i := 0; i < 3; i++ {
		if x := send(); x.status != http.StatusBadGateway || !x.flags.GetUpstreamProtocolError() {
			t.Fatalf("request %d: %d, flags %v; want Envoy's 502 with UPE", i+1, x.status, x.flags)
		}
	}
	x := send()
	if x.status != http.StatusServiceUnavailable || x.forwarded || !strings.Contains(string(x.body), `"reason":"circuit_open"`) {
		t.Fatalf("after three protocol errors: %d forwarded=%v %s; want 503 circuit_open, not forwarded", x.status, x.forwarded, x.body)
	}
	if n := served.Load(); n != 3 {
		t.Errorf("the upstream was asked %d times, want 3", n)
	}
}
