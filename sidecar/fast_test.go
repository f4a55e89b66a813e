package sidecar_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/tcptest"
	"github.com/contentguard/contentguard/sidecar"
)

// rawUpstream is a loopback upstream that answers with scripted bytes, for
// the framings net/http's server would never produce. It reads each request
// (head and Content-Length body), records its head, and writes what reply
// returns for the request's path; close ends the connection after it.
type rawUpstream struct {
	addr  string
	conns atomic.Int64
	// closed counts the connections closed after a close reply, once the
	// sidecar has received the FIN (tcptest.AwaitDelivered).
	closed atomic.Int64

	mu    sync.Mutex
	heads []string
}

type rawReply struct {
	bytes string
	close bool
}

func startRawUpstream(t testing.TB, reply func(path string) rawReply) *rawUpstream {
	t.Helper()
	u := &rawUpstream{}
	u.addr = tcptest.Serve(t, func(c net.Conn) {
		u.conns.Add(1)
		u.serve(c, reply)
	})
	return u
}

func (u *rawUpstream) serve(c net.Conn, reply func(path string) rawReply) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var head strings.Builder
		length := 0
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
			if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Content-Length") {
				length, _ = strconv.Atoi(strings.TrimSpace(value))
			}
		}
		if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
			return
		}
		u.mu.Lock()
		u.heads = append(u.heads, head.String())
		u.mu.Unlock()
		target := strings.Fields(head.String())[1]
		r := reply(strings.SplitN(target, "?", 2)[0])
		if _, err := io.WriteString(c, r.bytes); err != nil {
			return
		}
		if r.close {
			// The FIN first, and only once it has arrived count the close.
			_ = c.(*net.TCPConn).CloseWrite()
			if tcptest.AwaitDelivered(c, 10*time.Second) == nil {
				u.closed.Add(1)
			}
			return
		}
	}
}

func (u *rawUpstream) takeHeads() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	h := u.heads
	u.heads = nil
	return h
}

// fastPolicy forwards /open/... to the upstream without checks; anything
// else has no route (a 404 rejection).
const fastPolicy = `
apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: fast}
spec:
  upstream: {url: http://127.0.0.1:9, timeout: 2s}
  securityHeaders: strict
  limits: {maxBodyBytes: 1MiB}
  circuitBreaker: {consecutiveFailures: 1000, openFor: 1s}
  routes:
    - name: open
      match: {pathPrefix: /open}
      auth: none
`

// client is one keep-alive client connection with raw writes and parsed
// responses.
type client struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialClient(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (cl *client) write(raw string) {
	cl.t.Helper()
	if _, err := io.WriteString(cl.c, raw); err != nil {
		cl.t.Fatal(err)
	}
}

// read reads one response to a request of method, body and trailers
// included.
func (cl *client) read(method string) (*http.Response, string) {
	cl.t.Helper()
	resp, err := http.ReadResponse(cl.br, &http.Request{Method: method})
	if err != nil {
		cl.t.Fatalf("reading the response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		cl.t.Fatalf("reading the body: %v", err)
	}
	_ = resp.Body.Close()
	return resp, string(body)
}

func (cl *client) get(path string) (*http.Response, string) {
	cl.t.Helper()
	cl.write("GET " + path + " HTTP/1.1\r\nHost: edge.test\r\n\r\n")
	return cl.read(http.MethodGet)
}

// TestFastPathRelaysEveryFraming: whatever framing the upstream uses, the
// client gets the same body, headers and trailers as one well-formed
// HTTP/1.1 message, with the decision's headers in place of the
// upstream's, and its connection stays usable.
func TestFastPathRelaysEveryFraming(t *testing.T) {
	up := startRawUpstream(t, func(path string) rawReply {
		switch path {
		case "/open/chunked":
			return rawReply{bytes: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"5\r\nhello\r\n6;note=1\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n"}
		case "/open/until-close":
			return rawReply{bytes: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the upstream closes", close: true}
		case "/open/http10":
			return rawReply{bytes: "HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nold!", close: true}
		case "/open/te-and-cl":
			return rawReply{bytes: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"}
		case "/open/no-content":
			return rawReply{bytes: "HTTP/1.1 204 No Content\r\nX-Upstream: yes\r\n\r\n"}
		case "/open/hints":
			return rawReply{bytes: "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n" +
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}
		case "/open/frame-options":
			return rawReply{bytes: "HTTP/1.1 200 OK\r\nX-Frame-Options: ALLOWALL\r\nConnection: keep-alive, X-Secret\r\nX-Secret: hop\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n"}
		case "/open/head":
			return rawReply{bytes: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"}
		}
		return rawReply{bytes: "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"}
	})
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr})
	cl := dialClient(t, sc.addr)

	resp, body := cl.get("/open/chunked")
	if resp.StatusCode != 200 || body != "hello world" || resp.Trailer.Get("X-Sum") != "11" ||
		len(resp.TransferEncoding) != 1 || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("chunked: %d %q trailer %v te %v header %v", resp.StatusCode, body, resp.Trailer, resp.TransferEncoding, resp.Header)
	}
	resp, body = cl.get("/open/until-close")
	if resp.StatusCode != 200 || body != "until the upstream closes" || len(resp.TransferEncoding) != 1 || resp.Close {
		t.Fatalf("until close: %d %q te %v close %v", resp.StatusCode, body, resp.TransferEncoding, resp.Close)
	}
	resp, body = cl.get("/open/http10")
	if resp.StatusCode != 200 || body != "old!" || resp.ProtoMinor != 1 {
		t.Fatalf("HTTP/1.0 upstream: %d %q %s", resp.StatusCode, body, resp.Proto)
	}
	resp, body = cl.get("/open/te-and-cl")
	if resp.StatusCode != 200 || body != "abc" || resp.ContentLength != -1 || resp.Header.Get("Content-Length") != "" {
		t.Fatalf("TE and CL: %d %q cl %d", resp.StatusCode, body, resp.ContentLength)
	}
	resp, body = cl.get("/open/no-content")
	if resp.StatusCode != 204 || body != "" || resp.Header.Get("X-Upstream") != "yes" {
		t.Fatalf("204: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	cl.write("GET /open/hints HTTP/1.1\r\nHost: edge.test\r\n\r\n")
	if resp, _ = cl.read(http.MethodGet); resp.StatusCode != 103 || resp.Header.Get("Link") == "" {
		t.Fatalf("103: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, body = cl.read(http.MethodGet); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after 103: %d %q", resp.StatusCode, body)
	}
	resp, _ = cl.get("/open/frame-options")
	if got := resp.Header.Values("X-Frame-Options"); len(got) != 1 || got[0] != "DENY" {
		t.Fatalf("X-Frame-Options %q: the policy's value must replace the upstream's", got)
	}
	if resp.Header.Get("X-Secret") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Fatalf("hop-by-hop fields passed on: %v", resp.Header)
	}
	cl.write("HEAD /open/head HTTP/1.1\r\nHost: edge.test\r\n\r\n")
	if resp, body = cl.read(http.MethodHead); resp.StatusCode != 200 || resp.ContentLength != 10 || body != "" {
		t.Fatalf("HEAD: %d cl %d %q", resp.StatusCode, resp.ContentLength, body)
	}
	// Still the same client connection, still answering.
	if resp, _ = cl.get("/open/no-content"); resp.StatusCode != 204 {
		t.Fatalf("connection not reusable after the framings: %d", resp.StatusCode)
	}
}

// TestFastPathRefusesBadUpstreamAnswers: a response a client could not
// trust becomes a 502 problem, not a relayed mess.
func TestFastPathRefusesBadUpstreamAnswers(t *testing.T) {
	replies := map[string]string{
		"/open/status":     "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
		"/open/length":     "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"/open/encoding":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"/open/switch":     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\n\r\n",
		"/open/bare-lf":    "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
		"/open/field-name": "HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n",
	}
	up := startRawUpstream(t, func(path string) rawReply { return rawReply{bytes: replies[path], close: true} })
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr})
	for path := range replies {
		r := get(t, sc.addr, path, "", nil)
		if r.Status != http.StatusBadGateway || problemReason(t, r) != "upstream_unreachable" {
			t.Errorf("%s: status %d body %s, want a 502 problem", path, r.Status, r.Body)
		}
	}
}

// TestFastPathPipelinedAndRejected: requests written back to back on one
// connection are answered in order; a rejected upload's body is read and
// dropped so the next request on the connection is understood; a client's
// Connection: close is honoured.
func TestFastPathPipelinedAndRejected(t *testing.T) {
	up := startRawUpstream(t, func(path string) rawReply {
		return rawReply{bytes: "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(path)) + "\r\n\r\n" + path}
	})
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr})
	cl := dialClient(t, sc.addr)
	upload := strings.Repeat("u", 3000)
	cl.write("GET /open/1 HTTP/1.1\r\nHost: edge.test\r\n\r\n" +
		"POST /nowhere HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 3000\r\n\r\n" + upload +
		"POST /open/2 HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 3000\r\n\r\n" + upload +
		"GET /open/3 HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n")
	want := []struct {
		status int
		body   string
	}{{200, "/open/1"}, {404, ""}, {200, "/open/2"}, {200, "/open/3"}}
	for i, w := range want {
		resp, body := cl.read(http.MethodGet)
		if resp.StatusCode != w.status || w.body != "" && body != w.body {
			t.Fatalf("response %d: %d %q, want %d %q", i, resp.StatusCode, body, w.status, w.body)
		}
		if last := i == len(want)-1; resp.Close != last {
			t.Fatalf("response %d: Connection: close is %v", i, resp.Close)
		}
	}
	if _, err := cl.br.ReadByte(); err != io.EOF {
		t.Fatalf("after Connection: close the sidecar must close, read: %v", err)
	}
	heads := up.takeHeads()
	if len(heads) != 3 || !strings.HasPrefix(heads[1], "POST /open/2 HTTP/1.1\r\n") || !strings.Contains(heads[1], "Content-Length: 3000\r\n") {
		t.Fatalf("upstream heads: %q", heads)
	}

	// An upload too large to drain is answered, then the connection closes.
	cl = dialClient(t, sc.addr)
	cl.write("POST /nowhere HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 900000\r\n\r\n")
	if resp, _ := cl.read(http.MethodPost); resp.StatusCode != 404 || !resp.Close {
		t.Fatalf("large rejected upload: %d close %v", resp.StatusCode, resp.Close)
	}
}

// TestFastPathHandsOverToNetHTTP: on one connection, requests the fast path
// takes and requests it leaves to net/http (chunked body, a head larger
// than its buffer, HTTP/1.0) are all answered, in order, and judged alike.
func TestFastPathHandsOverToNetHTTP(t *testing.T) {
	up := startUpstream(t)
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: up.URL})
	cl := dialClient(t, sc.addr)
	if resp, _ := cl.get("/open/a"); resp.StatusCode != 200 {
		t.Fatalf("fast: %d", resp.StatusCode)
	}
	cl.write("POST /open/b HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	if resp, _ := cl.read(http.MethodPost); resp.StatusCode != 200 {
		t.Fatalf("chunked, handed over: %d", resp.StatusCode)
	}
	big := strings.Repeat("b", 10<<10)
	cl.write("GET /open/c HTTP/1.1\r\nHost: edge.test\r\nX-Big: " + big + "\r\n\r\n")
	if resp, _ := cl.read(http.MethodGet); resp.StatusCode != 200 {
		t.Fatalf("after the handover: %d", resp.StatusCode)
	}
	if resp, _ := cl.get("/nowhere"); resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("net/http path rejection: %d %v", resp.StatusCode, resp.Header)
	}
	got := up.take()
	if len(got) != 3 || got[1].Body != 3 || len(got[2].Header.Get("X-Big")) != len(big) {
		t.Fatalf("upstream saw %d requests: %+v", len(got), got)
	}

	// A large head on a fresh connection and HTTP/1.0 go to net/http too.
	cl = dialClient(t, sc.addr)
	cl.write("GET /open/d HTTP/1.1\r\nHost: edge.test\r\nX-Big: " + big + "\r\n\r\n")
	if resp, _ := cl.read(http.MethodGet); resp.StatusCode != 200 {
		t.Fatalf("large head: %d", resp.StatusCode)
	}
	cl = dialClient(t, sc.addr)
	cl.write("GET /open/e HTTP/1.0\r\nHost: edge.test\r\n\r\n")
	if resp, _ := cl.read(http.MethodGet); resp.StatusCode != 200 {
		t.Fatalf("HTTP/1.0: %d", resp.StatusCode)
	}
	if n := len(up.take()); n != 2 {
		t.Fatalf("upstream saw %d requests, want 2", n)
	}
}

// TestFastPathStaleUpstreamConnections: an upstream that closes every
// connection after its answer (without saying so) leaves stale connections
// in the pool. A body-less GET is retried on a fresh connection; a POST is
// never retried, so it must only be sent on a connection checked alive.
// Neither fails.
func TestFastPathStaleUpstreamConnections(t *testing.T) {
	up := startRawUpstream(t, func(path string) rawReply {
		return rawReply{bytes: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close: true}
	})
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr})
	cl := dialClient(t, sc.addr)
	for i := 0; i < 4; i++ {
		if i%2 == 0 {
			if resp, _ := cl.get("/open/get"); resp.StatusCode != 200 {
				t.Fatalf("GET %d: %d", i, resp.StatusCode)
			}
		} else {
			cl.write("POST /open/post HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 5\r\n\r\nhello")
			if resp, _ := cl.read(http.MethodPost); resp.StatusCode != 200 {
				t.Fatalf("POST %d: %d", i, resp.StatusCode)
			}
		}
		// The upstream's FIN has arrived before the next request picks a
		// pooled connection: that is the stale connection to be noticed.
		waitFor(t, 10*time.Second, func() bool { return up.closed.Load() == int64(i+1) })
	}
	if n := len(up.takeHeads()); n != 4 {
		t.Fatalf("the upstream answered %d requests, want 4 (no duplicate)", n)
	}
}

// TestFastPathUpstreamReuse: keep-alive upstream connections are reused
// across requests and clients; an upstream's Connection: close is obeyed.
func TestFastPathUpstreamReuse(t *testing.T) {
	up := startRawUpstream(t, func(path string) rawReply {
		if path == "/open/close" {
			return rawReply{bytes: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", close: true}
		}
		return rawReply{bytes: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}
	})
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr})
	for i := 0; i < 5; i++ {
		cl := dialClient(t, sc.addr)
		cl.get("/open/keep")
		cl.get("/open/keep")
	}
	if n := up.conns.Load(); n != 1 {
		t.Fatalf("10 sequential requests used %d upstream connections, want 1", n)
	}
	cl := dialClient(t, sc.addr)
	cl.get("/open/close")
	cl.get("/open/keep")
	if n := up.conns.Load(); n != 2 {
		t.Fatalf("after Connection: close, %d upstream connections, want 2", n)
	}
}

// TestFastPathSlowUpstreamIs504: the decision's timeout bounds the wait for
// the upstream's head on the fast path too, and the answer is a problem.
func TestFastPathSlowUpstreamIs504(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	up := startRawUpstream(t, func(path string) rawReply {
		<-release
		return rawReply{bytes: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}
	})
	p := parsePolicy(t, strings.Replace(fastPolicy, "timeout: 2s", "timeout: 200ms", 1))
	sc := startSidecar(t, sidecar.Options{Policy: p, Upstream: "http://" + up.addr})
	cl := dialClient(t, sc.addr)
	resp, body := cl.get("/open/slow")
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, `"reason":"upstream_timeout"`) {
		t.Fatalf("slow upstream: %d %s", resp.StatusCode, body)
	}
	if resp.Close {
		t.Fatal("a 504 for a body-less request need not close the client's connection")
	}
}

// TestFastPathAndNetHTTPAgree sends the same requests through a sidecar
// with and without the fast path: the status, the decision's headers and
// what the upstream receives are the same.
func TestFastPathAndNetHTTPAgree(t *testing.T) {
	up := startUpstream(t)
	policy := parsePolicy(t, basicPolicy)
	fast := startSidecar(t, sidecar.Options{Policy: policy, Upstream: up.URL})
	slow := startSidecar(t, sidecar.Options{Policy: policy, Upstream: up.URL, DisableFastPath: true})
	requests := []rawRequest{
		{Target: "/a//b/../c?x=1", Peer: "127.0.0.10", Header: http.Header{"X-Forwarded-For": {"203.0.113.9"}, "Te": {"trailers"}}},
		{Target: "/x", Peer: "127.0.0.22", Header: http.Header{"X-Forwarded-Host": {"evil"}, "Forwarded": {"for=1.2.3.4"}, "Accept": {"a", "b"}}},
		{Method: "POST", Target: "/upload", Body: []byte(strings.Repeat("p", 4096))},
		{Method: "POST", Target: "/upload", Body: []byte(strings.Repeat("p", 4097))},
		{Target: "/%2e%2e/etc"},
		{Method: "DELETE", Target: "/thing", Header: http.Header{"Keep-Alive": {"300"}, "Proxy-Authorization": {"secret"}}},
	}
	for _, rq := range requests {
		a := send(t, fast.addr, rq)
		ua := up.take()
		b := send(t, slow.addr, rq)
		ub := up.take()
		if a.Status != b.Status {
			t.Errorf("%s %s: fast %d, net/http %d", rq.Method, rq.Target, a.Status, b.Status)
		}
		for _, name := range []string{"Content-Type", "X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy"} {
			if a.Header.Get(name) != b.Header.Get(name) {
				t.Errorf("%s %s: %s fast %q, net/http %q", rq.Method, rq.Target, name, a.Header.Get(name), b.Header.Get(name))
			}
		}
		if len(ua) != len(ub) {
			t.Fatalf("%s %s: forwarded %d vs %d", rq.Method, rq.Target, len(ua), len(ub))
		}
		for i := range ua {
			if ua[i].Path != ub[i].Path || ua[i].Query != ub[i].Query || ua[i].Body != ub[i].Body {
				t.Errorf("%s %s: upstream saw %s?%s (%d bytes) vs %s?%s (%d bytes)", rq.Method, rq.Target,
					ua[i].Path, ua[i].Query, ua[i].Body, ub[i].Path, ub[i].Query, ub[i].Body)
			}
			ha, hb := ua[i].Header.Clone(), ub[i].Header.Clone()
			for _, h := range []http.Header{ha, hb} {
				h.Del("X-Request-Id")    // fresh per request
				h.Del("Accept-Encoding") // net/http's transport asks for gzip when the client did not
			}
			if fmt.Sprint(ha) != fmt.Sprint(hb) {
				t.Errorf("%s %s: upstream header\n fast     %v\n net/http %v", rq.Method, rq.Target, ha, hb)
			}
		}
	}
}

// TestFastPathSlowClients: a connection that sends nothing, or a head too
// slowly, is closed after the header timeout; a keep-alive connection may
// idle longer, up to the idle timeout.
func TestFastPathSlowClients(t *testing.T) {
	up := startRawUpstream(t, func(string) rawReply {
		return rawReply{bytes: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}
	})
	sc := startSidecar(t, sidecar.Options{
		Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr,
		ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: time.Minute,
	})
	closedWithin := func(cl *client, limit time.Duration) bool {
		_ = cl.c.SetReadDeadline(time.Now().Add(limit))
		_, err := cl.br.ReadByte()
		return err == io.EOF
	}

	silent := dialClient(t, sc.addr)
	if !closedWithin(silent, 5*time.Second) {
		t.Fatal("a connection that never sent a head was not closed by the header timeout")
	}

	slow := dialClient(t, sc.addr)
	slow.write("GET /open/x HTTP/1.1\r\n")
	if !closedWithin(slow, 5*time.Second) {
		t.Fatal("a head that never ended was not closed by the header timeout")
	}

	idle := dialClient(t, sc.addr)
	if resp, _ := idle.get("/open/x"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if closedWithin(idle, time.Second) {
		t.Fatal("a keep-alive connection was closed by the header timeout while idle")
	}
	_ = idle.c.SetDeadline(time.Now().Add(10 * time.Second))
	if resp, _ := idle.get("/open/x"); resp.StatusCode != 200 {
		t.Fatalf("after idling: status %d", resp.StatusCode)
	}
}
