package sidecar_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/contentguard/contentguard/internal/stacktest"
	"github.com/contentguard/contentguard/internal/syncbuf"
	"github.com/contentguard/contentguard/internal/tlstest"
	"github.com/contentguard/contentguard/sidecar"
)

// startTLSUpstream runs an https upstream on loopback that answers every
// request with its method, path and body size; /open/hold waits for
// release. It returns the server, the roots that trust it and a count of
// the connections it accepted.
func startTLSUpstream(t *testing.T, arrived chan<- struct{}, release <-chan struct{}) (*httptest.Server, *tls.Config, *atomic.Int64) {
	t.Helper()
	srvCfg, roots := tlstest.Loopback(t)
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/open/hold" {
			arrived <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path+" "+strings.Repeat("*", int(n))+" tls="+boolString(r.TLS != nil))
	}))
	srv.TLS = srvCfg
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes of TestUntrustedUpstreamCertificateIs502
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &tls.Config{RootCAs: roots}, &conns
}

func boolString(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// TestFastPathServesHTTPSUpstreams: with an https upstream the fast path
// still serves keep-alive traffic — it was handed to net/http before —
// over pooled TLS connections verified against Options.UpstreamTLS, and
// says so in its start log.
func TestFastPathServesHTTPSUpstreams(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	up, roots, conns := startTLSUpstream(t, arrived, release)
	var logs syncbuf.Buffer
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: up.URL, UpstreamTLS: roots,
		Logger: newJSONLogger(&logs)})
	cl := dialClient(t, sc.addr)
	if resp, body := cl.get("/open/a"); resp.StatusCode != 200 || body != "GET /open/a  tls=yes" {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	cl.write("POST /open/b HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 5\r\n\r\nhello")
	if resp, body := cl.read(http.MethodPost); resp.StatusCode != 200 || body != "POST /open/b ***** tls=yes" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}

	// While the upstream holds a request, the sidecar goroutine waiting
	// for its answer is the fast path's, and no ReverseProxy is at work.
	cl.write("GET /open/hold HTTP/1.1\r\nHost: edge.test\r\n\r\n")
	<-arrived
	fast := stacktest.Count("contentguard/sidecar/fastpath.(*conn).forward")
	proxied := stacktest.Count("net/http/httputil.(*ReverseProxy).ServeHTTP")
	close(release)
	if resp, body := cl.read(http.MethodGet); resp.StatusCode != 200 || body != "GET /open/hold  tls=yes" {
		t.Fatalf("held GET: %d %q", resp.StatusCode, body)
	}
	if fast != 1 || proxied != 0 {
		t.Fatalf("the request was served by %d fast-path and %d net/http goroutines, want 1 and 0", fast, proxied)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d TLS connections for three requests, want 1 (pooled)", n)
	}
	if !strings.Contains(logs.String(), `"fast_path":true`) {
		t.Fatalf("no start line for the fast path:\n%s", logs.String())
	}
}

// TestUntrustedUpstreamCertificateIs502: an https upstream whose
// certificate the sidecar does not trust is never talked to: 502 on both
// paths, for requests with and without a body.
func TestUntrustedUpstreamCertificateIs502(t *testing.T) {
	bothPaths(t, func(t *testing.T, netHTTP bool) {
		up, _, _ := startTLSUpstream(t, nil, nil)
		sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: up.URL, DisableFastPath: netHTTP})
		cl := dialClient(t, sc.addr)
		if resp, body := cl.get("/open/a"); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("GET: %d %q", resp.StatusCode, body)
		}
		cl = dialClient(t, sc.addr)
		cl.write("POST /open/b HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 5\r\n\r\nhello")
		if resp, body := cl.read(http.MethodPost); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("POST: %d %q", resp.StatusCode, body)
		}
	})
}

// TestStartLogNamesTheDataPaths: Serve says in one line which path serves
// what — the fast path on by default, off when turned off (info) or when a
// custom Transport rules it out (a warning, with the reason) — and a
// sidecar with a custom Transport still serves every request, through it.
func TestStartLogNamesTheDataPaths(t *testing.T) {
	up := startUpstream(t)
	var used atomic.Int64
	custom := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})
	for _, c := range []struct {
		name     string
		opts     sidecar.Options
		fast     bool
		level    string
		reason   string
		handedTo string
	}{
		{"default", sidecar.Options{LocalPaths: []string{"/token"}, Local: http.NotFoundHandler()}, true, "INFO", "", "in-process paths /token"},
		{"turned off", sidecar.Options{DisableFastPath: true}, false, "INFO", "--no-fast-path", ""},
		{"custom transport", sidecar.Options{Transport: custom}, false, "WARN", "Options.Transport is set", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs syncbuf.Buffer
			opts := c.opts
			opts.Policy, opts.Upstream, opts.Logger = parsePolicy(t, fastPolicy), up.URL, newJSONLogger(&logs)
			sc := startSidecar(t, opts)
			if r := get(t, sc.addr, "/open/x", "", nil); r.Status != 200 {
				t.Fatalf("GET: %d", r.Status)
			}
			var line struct {
				Level    string `json:"level"`
				FastPath *bool  `json:"fast_path"`
				Reason   string `json:"reason"`
				NetHTTP  string `json:"net_http"`
			}
			found := 0
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, `"fast_path"`) {
					found++
					if err := json.Unmarshal([]byte(l), &line); err != nil {
						t.Fatal(err)
					}
				}
			}
			if found != 1 || line.FastPath == nil || *line.FastPath != c.fast || line.Level != c.level ||
				!strings.Contains(line.Reason, c.reason) || !strings.Contains(line.NetHTTP, c.handedTo) {
				t.Fatalf("%d start lines, the last %+v:\n%s", found, line, logs.String())
			}
		})
	}
	if used.Load() != 1 {
		t.Fatalf("the custom transport carried %d requests, want 1", used.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
