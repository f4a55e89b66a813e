package sidecar_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/stacktest"
	"github.com/contentguard/contentguard/internal/syncbuf"
	"github.com/contentguard/contentguard/internal/tcptest"
	"github.com/contentguard/contentguard/sidecar"
)

// Adversarial tests of the fast path (fast.go): desynchronisation between
// client, sidecar and upstream, bounded resources, error semantics and
// shutdown. Where a case applies to both paths, both are held to it.

// scriptedUpstream is a loopback upstream whose connections a test drives
// byte by byte: serve runs once per accepted connection.
type scriptedUpstream struct {
	addr   string
	conns  atomic.Int64 // accepted
	closed atomic.Int64 // serve returned and the connection is closed
}

func startScriptedUpstream(t testing.TB, serve func(n int64, c net.Conn, br *bufio.Reader)) *scriptedUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &scriptedUpstream{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := u.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer u.closed.Add(1)
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				serve(n, c, bufio.NewReader(c))
			}()
		}
	}()
	return u
}

// readRequestHead reads one request head and its Content-Length body and
// returns the request line.
func readRequestHead(br *bufio.Reader) (string, error) {
	first, length := "", 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		if first == "" {
			first = strings.TrimSpace(line)
		}
		if line == "\r\n" {
			break
		}
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(value))
		}
	}
	_, err := io.CopyN(io.Discard, br, int64(length))
	return first, err
}

// closedPortAddr is a loopback address nothing listens on.
func closedPortAddr(t testing.TB) string {
	t.Helper()
	return tcptest.RefusingAddr(t) // no other process can take it meanwhile
}

// sidecarGoroutines counts the goroutines running code of package sidecar,
// so that goroutines of the test itself, the runtime or other packages
// (timers, the HTTP client's keep-alives) do not blur a leak check.
func sidecarGoroutines() int { return stacktest.Count("contentguard/sidecar.") }

// bothPaths runs f against the fast path and against net/http.
func bothPaths(t *testing.T, f func(t *testing.T, netHTTP bool)) {
	t.Run("fast", func(t *testing.T) { f(t, false) })
	t.Run("net-http", func(t *testing.T) { f(t, true) })
}

// nextResponseOrEOF reads what follows on cl: io.EOF (or a reset) when the
// sidecar closed the connection, otherwise the next response.
func (cl *client) nextResponseOrEOF(method string) (*http.Response, string, error) {
	cl.t.Helper()
	if _, err := cl.br.Peek(1); err != nil {
		return nil, "", err
	}
	resp, body := cl.read(method)
	return resp, body, nil
}

// TestUnreachableUpstreamDoesNotReadBodyAsRequest: when the upstream
// cannot be dialled, the request's body was never read. Answering 502 and
// then reading on would take the body for the next request: a client (or a
// front proxy's other user) could smuggle a request inside a body. After
// the 502 the connection either closes or carries the client's next real
// request, never the body's.
func TestUnreachableUpstreamDoesNotReadBodyAsRequest(t *testing.T) {
	bothPaths(t, func(t *testing.T, netHTTP bool) {
		sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + closedPortAddr(t), DisableFastPath: netHTTP})
		cl := dialClient(t, sc.addr)
		smuggled := "GET /smuggled HTTP/1.1\r\nHost: edge.test\r\n\r\n"
		cl.write("POST /open/x HTTP/1.1\r\nHost: edge.test\r\nContent-Length: " + strconv.Itoa(len(smuggled)) + "\r\n\r\n" + smuggled)
		if resp, _ := cl.read(http.MethodPost); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("unreachable upstream: %d, want 502", resp.StatusCode)
		}
		_, _ = io.WriteString(cl.c, "GET /next HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		// /smuggled and /next are both unrouted (404): the problem's
		// instance tells which one was answered.
		resp, body, err := cl.nextResponseOrEOF(http.MethodGet)
		if err == nil && (strings.Contains(body, "/smuggled") || !strings.Contains(body, "/next")) {
			t.Fatalf("after the 502 the body was served as a request: %d %s", resp.StatusCode, body)
		}
	})
}

// staleTrio is an upstream that holds the first three requests until all
// three arrived (so the sidecar opens three connections), answers each, and
// closes every connection after its answer without saying so.
func staleTrio(t *testing.T) *scriptedUpstream {
	var arrived atomic.Int64
	all := make(chan struct{})
	return startScriptedUpstream(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		if _, err := readRequestHead(br); err != nil {
			return
		}
		if arrived.Add(1) == 3 {
			close(all)
		}
		<-all
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
}

// TestRetryAfterStalePooledConnectionDialsFresh: after the upstream closed
// every pooled connection (a restart), a body-less GET that meets one stale
// connection is retried on a fresh connection, as promised — not on the
// next stale one from the pool, which would answer 502 and feed the
// breaker a failure for a healthy upstream.
func TestRetryAfterStalePooledConnectionDialsFresh(t *testing.T) {
	bothPaths(t, func(t *testing.T, netHTTP bool) {
		up := staleTrio(t)
		sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr, DisableFastPath: netHTTP})
		var wg sync.WaitGroup
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := trySend(sc.addr, rawRequest{Target: "/open/warm"}, 10*time.Second)
				if err != nil || r.Status != 200 {
					t.Errorf("warm-up: %v %d", err, r.Status)
				}
			}()
		}
		wg.Wait()
		// The three connections are pooled; the upstream closed them all.
		waitFor(t, 5*time.Second, func() bool { return up.closed.Load() == 3 })
		for i := 0; i < 3; i++ {
			if r := get(t, sc.addr, "/open/after-restart", "", nil); r.Status != 200 {
				t.Fatalf("request %d after the upstream closed its pooled connections: %d %s", i, r.Status, r.Body)
			}
		}
	})
}

// TestShutdownDoesNotWaitForStalledUpstream: when the drain timeout ends,
// Serve returns even though a fast-path request is stuck reading an
// upstream body that stopped mid-way (which only the write timeout, 5
// minutes by default, would otherwise end). net/http's Close does not wait
// either.
func TestShutdownDoesNotWaitForStalledUpstream(t *testing.T) {
	release := make(chan struct{})
	up := startScriptedUpstream(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		if _, err := readRequestHead(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
		<-release
	})
	t.Cleanup(func() { close(release) }) // runs before the upstream's cleanup
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr,
		DrainTimeout: 200 * time.Millisecond, WriteTimeout: 40 * time.Second})
	cl := dialClient(t, sc.addr)
	cl.write("GET /open/stall HTTP/1.1\r\nHost: edge.test\r\n\r\n")
	resp, err := http.ReadResponse(cl.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatal(err)
	}
	if b := make([]byte, 7); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	} else if _, err := io.ReadFull(resp.Body, b); err != nil || string(b) != "partial" {
		t.Fatalf("body start %q %v", b, err)
	}
	sc.cancel()
	sc.serveReturns(t, 10*time.Second, "Serve still waits for a stalled upstream long after the drain timeout")
	// The client's response was cut short: it must not look complete.
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("client reading the cut response: %v, want unexpected EOF", err)
	}
}

// TestStrayUpstreamResponseNeverReachesAnotherClient: an upstream that
// sends a second response on an idle pooled connection (it read a request
// out of a body, or its Content-Length lied) must not have that response
// delivered to the next client whose request takes the connection: the
// response queue would be out of step for good, each client reading
// another's answer. net/http's transport watches idle connections for
// this; the sidecar checks a pooled connection is quiet before reusing it.
func TestStrayUpstreamResponseNeverReachesAnotherClient(t *testing.T) {
	bothPaths(t, func(t *testing.T, netHTTP bool) {
		stray, written := make(chan struct{}), make(chan struct{})
		up := startScriptedUpstream(t, func(n int64, c net.Conn, br *bufio.Reader) {
			for i := 0; ; i++ {
				if _, err := readRequestHead(br); err != nil {
					return
				}
				if n == 1 && i == 0 {
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
					<-stray
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nLEAKED")
					// In the sidecar's receive queue before the next client
					// comes: the answer nobody asked for is there to notice.
					if err := tcptest.AwaitDelivered(c, 10*time.Second); err != nil {
						t.Error(err)
					}
					close(written)
					continue
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
			}
		})
		sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr, DisableFastPath: netHTTP})
		if r := get(t, sc.addr, "/open/a", "", nil); string(r.Body) != "first" {
			t.Fatalf("first answer %d %q", r.Status, r.Body)
		}
		// The first client has its answer: the connection is pooled. Now
		// the upstream sends an answer nobody asked for.
		close(stray)
		<-written
		for i := 0; i < 2; i++ {
			if r := get(t, sc.addr, "/open/b", "", nil); r.Status != 200 || string(r.Body) != "second" {
				t.Fatalf("request %d of another client got %d %q", i, r.Status, r.Body)
			}
		}
	})
}

// TestEarlyUpstreamAnswerIsRelayed: an upstream may answer an upload
// before reading all of it (413, 401) and close the connection. On the fast
// path its answer is the answer — not a 502 that also counts as a
// connection failure for the breaker — and the client's connection, whose
// body the sidecar stopped reading, is closed rather than read on.
// (net/http's transport answers 502 here when the write fails first: a
// limitation of the net/http path, not asserted.)
func TestEarlyUpstreamAnswerIsRelayed(t *testing.T) {
	for i := 0; i < 3; i++ {
		up := startScriptedUpstream(t, func(_ int64, c net.Conn, br *bufio.Reader) {
			for {
				if line, err := br.ReadString('\n'); err != nil || line == "\r\n" {
					break
				}
			}
			_, _ = io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 4\r\n\r\nnope")
		})
		p := parsePolicy(t, strings.Replace(fastPolicy, "maxBodyBytes: 1MiB", "maxBodyBytes: 64MiB", 1))
		sc := startSidecar(t, sidecar.Options{Policy: p, Upstream: "http://" + up.addr})
		cl := dialClient(t, sc.addr)
		// More than the socket buffers hold: the sidecar is still writing
		// the body when the upstream closes.
		body := strings.Repeat("b", 16<<20)
		go func() {
			_, _ = io.WriteString(cl.c, "POST /open/up HTTP/1.1\r\nHost: edge.test\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body+
				"GET /smuggled HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		}()
		resp, got := cl.read(http.MethodPost)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || got != "nope" {
			t.Fatalf("early upstream answer: %d %q", resp.StatusCode, got)
		}
		if !resp.Close {
			t.Fatal("the body was not read to its end: the answer must close the connection")
		}
		if _, _, err := cl.nextResponseOrEOF(http.MethodGet); err == nil {
			t.Fatal("a second response followed: the rest of the body was read as a request")
		}
	}
}

// answerFirstThenSecond is an upstream that answers the first request of
// its first connection with first, and every other request with a 200
// whose body is "second".
func answerFirstThenSecond(t *testing.T, first string) *scriptedUpstream {
	return startScriptedUpstream(t, func(n int64, c net.Conn, br *bufio.Reader) {
		for i := 0; ; i++ {
			if _, err := readRequestHead(br); err != nil {
				return
			}
			reply := "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"
			if n == 1 && i == 0 {
				reply = first
			}
			if _, err := io.WriteString(c, reply); err != nil {
				return
			}
		}
	})
}

// TestUpstreamOverrunNeverReachesAnotherClient: bytes an upstream sends
// past the end of a response (more than its Content-Length; a body on a
// HEAD, 204 or 304 answer) are never read as the next response, neither on
// the same client connection nor on another client's.
func TestUpstreamOverrunNeverReachesAnotherClient(t *testing.T) {
	const leak = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nLEAKED"
	withBody := func(status string) string {
		return "HTTP/1.1 " + status + "\r\nContent-Length: " + strconv.Itoa(len(leak)) + "\r\n\r\n" + leak
	}
	cases := []struct{ name, method, first string }{
		{"longer-than-length", http.MethodGet, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst" + leak},
		{"head-with-body", http.MethodHead, withBody("200 OK")},
		{"204-with-body", http.MethodGet, withBody("204 No Content")},
		{"304-with-body", http.MethodGet, withBody("304 Not Modified")},
		{"chunked-then-more", http.MethodGet, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n" + leak},
	}
	bothPaths(t, func(t *testing.T, netHTTP bool) {
		for _, tc := range cases {
			up := answerFirstThenSecond(t, tc.first)
			sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr, DisableFastPath: netHTTP})
			// One client sends the request and, on the same connection, a GET.
			cl := dialClient(t, sc.addr)
			cl.write(tc.method + " /open/first HTTP/1.1\r\nHost: edge.test\r\n\r\n")
			if resp, body := cl.read(tc.method); strings.Contains(body, "LEAKED") || resp.StatusCode >= 500 {
				t.Fatalf("%s: first answer %d %q", tc.name, resp.StatusCode, body)
			}
			if resp, body := cl.get("/open/again"); body != "second" {
				t.Fatalf("%s: the same client's next answer %d %q", tc.name, resp.StatusCode, body)
			}
			if r := get(t, sc.addr, "/open/other", "", nil); string(r.Body) != "second" {
				t.Fatalf("%s: another client's answer %d %q", tc.name, r.Status, r.Body)
			}
		}
	})
}

// TestUpstreamFailureAfterHeadTruncates: once the response head went to
// the client, an upstream failure can only be told by ending the
// connection without completing the body — never by a clean end, and
// never by a second response (a 502 after a 200 would be read as the
// answer to the client's next request).
func TestUpstreamFailureAfterHeadTruncates(t *testing.T) {
	cases := map[string]string{
		"short-body":          "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this",
		"bad-chunk-size":      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
		"chunk-without-crlf":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
		"chunked-cut":         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
		"bad-trailer":         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nBad Trailer\r\n\r\n",
		"chunk-line-unending": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n" + strings.Repeat("0", 40<<10),
		"too-many-trailers":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + strings.Repeat("X-T: 1\r\n", 200) + "\r\n",
	}
	for name, reply := range cases {
		up := startRawUpstream(t, func(string) rawReply { return rawReply{bytes: reply, close: true} })
		sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr})
		cl := dialClient(t, sc.addr)
		cl.write("GET /open/x HTTP/1.1\r\nHost: edge.test\r\n\r\nGET /open/next HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		resp, err := http.ReadResponse(cl.br, &http.Request{Method: http.MethodGet})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", name, resp.StatusCode)
		}
		if b, err := io.ReadAll(resp.Body); err == nil {
			t.Fatalf("%s: the client read a complete body %q", name, b)
		}
		// What the client did not consume of the cut body may remain;
		// a second response may not.
		if rest, _ := io.ReadAll(cl.br); strings.Contains(string(rest), "HTTP/1.1") {
			t.Fatalf("%s: a response followed the cut one: %q", name, rest)
		}
	}
}

// TestBadUpstreamHeadsAreBounded: an upstream head that never ends, is
// larger than 64 KiB, or has a line longer than the read buffer is a 502,
// and the sidecar does not keep reading it.
func TestBadUpstreamHeadsAreBounded(t *testing.T) {
	cases := map[string]string{
		"huge-head":  "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Filler: "+strings.Repeat("f", 100)+"\r\n", 700) + "Content-Length: 0\r\n\r\n",
		"long-line":  "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("l", 40<<10) + "\r\nContent-Length: 0\r\n\r\n",
		"many-1xx":   strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", 20) + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"endless":    "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-More: m\r\n", 20000),
		"bad-status": "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
	}
	for name, reply := range cases {
		up := startRawUpstream(t, func(string) rawReply { return rawReply{bytes: reply, close: false} })
		sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr})
		cl := dialClient(t, sc.addr)
		cl.write("GET /open/x HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		var final *http.Response
		for n := 0; ; n++ {
			resp, _ := cl.read(http.MethodGet)
			if resp.StatusCode >= 200 {
				final = resp
				break
			}
			if n >= 8 {
				t.Fatalf("%s: more than 8 informational answers relayed", name)
			}
		}
		if final.StatusCode != http.StatusBadGateway {
			t.Fatalf("%s: status %d, want 502", name, final.StatusCode)
		}
	}
}

// readHeadLines reads one request head and returns its request line and
// Content-Length, leaving the body unread.
func readHeadLines(br *bufio.Reader) (line string, length int, err error) {
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return "", 0, err
		}
		if line == "" {
			line = strings.TrimSpace(l)
		}
		if l == "\r\n" {
			return line, length, nil
		}
		if name, value, ok := strings.Cut(l, ":"); ok && strings.EqualFold(name, "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(value))
		}
	}
}

// TestFastPathObservesOncePerAllowedRequest: on the fast path, every
// allowed request reports exactly one outcome to the breaker whatever
// went wrong — a body cut by the upstream after the head, a 1xx followed
// by a dead upstream, a client whose body never arrived, an early answer
// to an upload — and the access log says what the client got (400 for a
// body that ended short of its Content-Length).
func TestFastPathObservesOncePerAllowedRequest(t *testing.T) {
	up := startScriptedUpstream(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		for {
			line, length, err := readHeadLines(br)
			if err != nil {
				return
			}
			switch strings.Fields(line)[1] {
			case "/early":
				_, _ = io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
				return
			case "/cut":
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
				return
			case "/hints-then-gone":
				_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
				return
			}
			if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	var logs syncbuf.Buffer
	p := parsePolicy(t, strings.Replace(basicPolicyLongTimeout, "timeout: 5s}", "timeout: 5s}\n  limits: {maxBodyBytes: 64MiB}", 1))
	sc := startSidecar(t, sidecar.Options{Policy: p, Upstream: "http://" + up.addr, Logger: newJSONLogger(&logs)})
	// Every Observe is counted once in upstream_outcomes_total (client
	// faults too, which the breaker itself does not count).
	outcomes := func() int { return int(counterSum(t, sc, sidecar.MetricUpstreamOutcomes, nil)) }
	allowed := 0
	expect := func(what string) {
		t.Helper()
		allowed++
		waitFor(t, 5*time.Second, func() bool { return outcomes() >= allowed })
		if n := outcomes(); n != allowed {
			t.Fatalf("after %s: %d outcomes for %d allowed requests", what, n, allowed)
		}
	}

	get(t, sc.addr, "/ok", "", nil)
	expect("a plain answer")

	cl := dialClient(t, sc.addr)
	cl.write("GET /cut HTTP/1.1\r\nHost: edge.test\r\n\r\n")
	if resp, err := http.ReadResponse(cl.br, &http.Request{Method: http.MethodGet}); err != nil {
		t.Fatal(err)
	} else if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("a cut body read as complete")
	}
	expect("a body cut after the head")

	cl = dialClient(t, sc.addr)
	cl.write("GET /hints-then-gone HTTP/1.1\r\nHost: edge.test\r\n\r\n")
	if resp, _ := cl.read(http.MethodGet); resp.StatusCode != 103 {
		t.Fatalf("hints: %d", resp.StatusCode)
	}
	if resp, _ := cl.read(http.MethodGet); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("after hints, a dead upstream: %d", resp.StatusCode)
	}
	expect("1xx then a dead upstream")

	cl = dialClient(t, sc.addr)
	cl.write("POST /upload HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 100\r\n\r\nonly ten b")
	_ = cl.c.(*net.TCPConn).CloseWrite() // the body never arrives
	if resp, body := cl.read(http.MethodPost); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"reason":"malformed_body"`) {
		t.Fatalf("a body short of its Content-Length: %d %s", resp.StatusCode, body)
	}
	expect("a client body that never arrived")

	cl = dialClient(t, sc.addr)
	body := strings.Repeat("b", 16<<20)
	go func() {
		_, _ = io.WriteString(cl.c, "POST /early HTTP/1.1\r\nHost: edge.test\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	}()
	if resp, _ := cl.read(http.MethodPost); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("early answer: %d", resp.StatusCode)
	}
	expect("an early answer to an upload")

	if n := sc.drainedOutcomes(t); n != allowed {
		t.Fatalf("%d outcomes for %d allowed requests", n, allowed)
	}
	statuses := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e struct {
			Msg, Path, Reason string
			Status            float64
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "request" {
			statuses[e.Path] = e.Status
			if e.Path == "/upload" && e.Reason != "malformed_body" {
				t.Errorf("the upload whose body never arrived is logged with reason %q", e.Reason)
			}
		}
	}
	want := map[string]float64{"/ok": 200, "/cut": 200, "/hints-then-gone": 502, "/upload": 400, "/early": 413}
	for path, status := range want {
		if statuses[path] != status {
			t.Errorf("access log status for %s: %v, want %v (all: %v)", path, statuses[path], status, statuses)
		}
	}
}

// TestFastPathLogsBeforeLingeringClose: an answer after which the
// connection closes with a body still unread (a rejected large upload, a
// 502 for an upload) lingers before the close so that the client reads it;
// its access log line is written before that, as for every answer — a
// client holding the answer finds its line.
func TestFastPathLogsBeforeLingeringClose(t *testing.T) {
	var logs syncbuf.Buffer
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + closedPortAddr(t), Logger: newJSONLogger(&logs)})
	for _, rq := range []struct {
		path   string
		length int
		status int
	}{{"/nowhere/upload", 900000, 404}, {"/open/upload", 10, 502}} {
		cl := dialClient(t, sc.addr)
		cl.write("POST " + rq.path + " HTTP/1.1\r\nHost: edge.test\r\nContent-Length: " + strconv.Itoa(rq.length) + "\r\n\r\n")
		resp, _ := cl.read(http.MethodPost)
		if resp.StatusCode != rq.status || !resp.Close {
			t.Fatalf("%s: %d close %v, want %d and close", rq.path, resp.StatusCode, resp.Close, rq.status)
		}
		if !strings.Contains(logs.String(), `"path":"`+rq.path+`"`) {
			t.Fatalf("%s: the client has its answer but the access log has no line for it yet", rq.path)
		}
	}
}

// TestGracefulShutdownBothPaths: when Serve is cancelled, in-flight
// requests on the fast path and on connections handed to net/http finish
// (their answers say Connection: close), idle keep-alive connections of
// both kinds are closed at once rather than at the idle timeout, and Serve
// returns.
func TestGracefulShutdownBothPaths(t *testing.T) {
	up := startUpstream(t)
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, basicPolicyLongTimeout), Upstream: up.URL, IdleTimeout: time.Minute})
	chunked := func(path string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	}
	idleFast := dialClient(t, sc.addr)
	if resp, _ := idleFast.get("/idle-fast"); resp.StatusCode != 200 {
		t.Fatalf("fast: %d", resp.StatusCode)
	}
	idleHanded := dialClient(t, sc.addr)
	idleHanded.write(chunked("/idle-handed"))
	if resp, _ := idleHanded.read(http.MethodPost); resp.StatusCode != 200 {
		t.Fatalf("handed over: %d", resp.StatusCode)
	}

	up.script(200, 500*time.Millisecond, false)
	n := up.count()
	busyFast, busyHanded := dialClient(t, sc.addr), dialClient(t, sc.addr)
	busyFast.write("GET /busy-fast HTTP/1.1\r\nHost: edge.test\r\n\r\n")
	busyHanded.write(chunked("/busy-handed"))
	waitFor(t, 5*time.Second, func() bool { return up.count() == n+2 })
	sc.cancel()

	for _, c := range []struct {
		name   string
		cl     *client
		method string
	}{{"fast", busyFast, http.MethodGet}, {"handed over", busyHanded, http.MethodPost}} {
		resp, body := c.cl.read(c.method)
		if resp.StatusCode != 200 || !strings.Contains(body, "upstream says 200") || !resp.Close {
			t.Fatalf("in-flight %s request during the drain: %d %q close %v", c.name, resp.StatusCode, body, resp.Close)
		}
	}
	for name, cl := range map[string]*client{"fast": idleFast, "handed over": idleHanded} {
		if _, err := cl.br.ReadByte(); err != io.EOF {
			t.Fatalf("idle %s connection during the drain: read %v, want EOF", name, err)
		}
	}
	sc.serveReturns(t, 10*time.Second, "Serve did not return after the drain")
}

// TestHeaderHandlingParity: what the upstream receives for requests with
// planted identity and forwarding headers (any case), hop-by-hop fields and
// repeated fields is the same through both paths, and none of the planted
// values gets through.
func TestHeaderHandlingParity(t *testing.T) {
	up := startUpstream(t)
	policy := loadPolicy(t, conformancePolicy("standard.yaml"))
	fast := startSidecar(t, sidecar.Options{Policy: policy, Upstream: up.URL})
	slow := startSidecar(t, sidecar.Options{Policy: policy, Upstream: up.URL, DisableFastPath: true})
	planted := http.Header{
		"X-API-Key":           {"cg-conformance-read-key"},
		"x-auth-subject":      {"admin"},
		"X-AUTH-SCOPES":       {"admin"},
		"x-Auth-Subject":      {"root"},
		"x-forwarded-for":     {"203.0.113.7"},
		"X-Forwarded-Host":    {"evil.example"},
		"x-forwarded-proto":   {"https"},
		"forwarded":           {"for=203.0.113.7;host=evil.example"},
		"Accept":              {"a/b", "c/d"},
		"te":                  {"trailers", "trailers"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Connection":    {"keep-alive"},
		"proxy-authorization": {"Basic secret"},
		"X-Custom":            {"one", "two"},
	}
	for _, c := range []struct{ peer, xff, host, proto string }{
		{"127.0.0.22", "127.0.0.22", "edge.test", "http"},                  // a client: its chain is dropped
		{"127.0.0.10", "203.0.113.7, 127.0.0.10", "evil.example", "https"}, // the trusted proxy: kept
	} {
		rq := rawRequest{Target: "/api/v1/items?q=1", Header: planted, Peer: c.peer}
		var got [2]http.Header
		for i, addr := range []string{fast.addr, slow.addr} {
			if r := send(t, addr, rq); r.Status != 200 {
				t.Fatalf("from %s via %d: %d %s", c.peer, i, r.Status, r.Body)
			}
			rcv := up.take()
			if len(rcv) != 1 {
				t.Fatalf("from %s: %d requests forwarded", c.peer, len(rcv))
			}
			h := rcv[0].Header
			for _, name := range []string{"X-Request-Id", "X-Correlation-Id", "Accept-Encoding"} {
				h.Del(name) // fresh per request; net/http's transport asks for gzip
			}
			got[i] = h
		}
		h := got[0]
		want := map[string][]string{
			"X-Auth-Subject":    {"reader"},
			"X-Auth-Scopes":     {"read"},
			"X-Forwarded-For":   {c.xff},
			"X-Forwarded-Host":  {c.host},
			"X-Forwarded-Proto": {c.proto},
			"Accept":            {"a/b", "c/d"},
			"X-Custom":          {"one", "two"},
			"Te":                {"trailers"},
		}
		for name, values := range want {
			if fmt.Sprint(h[name]) != fmt.Sprint(values) {
				t.Errorf("from %s: upstream %s = %q, want %q", c.peer, name, h[name], values)
			}
		}
		for _, name := range []string{"Forwarded", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization"} {
			if v, ok := h[name]; ok {
				t.Errorf("from %s: upstream received %s: %q", c.peer, name, v)
			}
		}
		if fmt.Sprint(got[0]) != fmt.Sprint(got[1]) {
			t.Errorf("from %s: the upstream's header differs\n fast     %v\n net/http %v", c.peer, got[0], got[1])
		}
	}
}

// TestFastPathTimeoutsEndStuckExchanges: a client that never reads a large
// answer is cut at the write timeout, and one whose body stops coming at
// the route's body timeout (with a 408); either way the upstream
// connection is closed, not pooled half-used, the breaker hears once, and
// no goroutine outlives the exchange.
func TestFastPathTimeoutsEndStuckExchanges(t *testing.T) {
	up := startScriptedUpstream(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		for {
			line, length, err := readHeadLines(br)
			if err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
				return
			}
			if strings.Contains(line, "/big") {
				// Far more than the socket buffers hold, until the sidecar
				// gives up on its client and closes this connection.
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
				chunk := strings.Repeat("z", 64<<10)
				for {
					if _, err := io.WriteString(c, chunk); err != nil {
						return
					}
				}
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	p := parsePolicy(t, strings.Replace(fastPolicy, "      auth: none\n", "      auth: none\n      bodyTimeout: 1s\n", 1))
	sc := startSidecar(t, sidecar.Options{Policy: p, Upstream: "http://" + up.addr,
		ReadTimeout: time.Second, WriteTimeout: time.Second})
	if r := get(t, sc.addr, "/open/warm", "", nil); r.Status != 200 {
		t.Fatalf("warm-up: %d", r.Status)
	}
	baseline := sidecarGoroutines()
	closedBefore := up.closed.Load()

	// A client that asks for a large answer and never reads it.
	deaf := dialClient(t, sc.addr)
	deaf.write("GET /open/big HTTP/1.1\r\nHost: edge.test\r\n\r\n")
	// A client whose body stops after ten bytes.
	mute := dialClient(t, sc.addr)
	mute.write("POST /open/upload HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 100\r\n\r\nonly ten b")

	// Both upstream connections are closed by the sidecar (the pooled one
	// took one of the requests; the other was dialled).
	waitFor(t, 10*time.Second, func() bool { return up.closed.Load() == closedBefore+2 })
	if resp, _ := mute.read(http.MethodPost); resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("the client whose body stalled: %d, want 408", resp.StatusCode)
	}
	if _, err := io.ReadAll(mute.br); err != nil {
		t.Fatalf("the client whose body stalled: %v, want the connection closed", err)
	}
	_ = deaf.c.Close()
	_ = mute.c.Close()
	waitFor(t, 10*time.Second, func() bool { return sidecarGoroutines() <= baseline })
	if r := get(t, sc.addr, "/open/after", "", nil); r.Status != 200 {
		t.Fatalf("after the stuck exchanges: %d", r.Status)
	}
}

// TestPipelinedMixStaysInStep: one write carries a fast request with a
// body, a rejected upload, a HEAD whose upstream answer is chunked, and a
// chunked upload that is handed to net/http with the GET behind it; every
// answer comes back in order, and the upstream sees exactly the requests
// and bodies the client framed.
func TestPipelinedMixStaysInStep(t *testing.T) {
	up := startScriptedUpstream(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br) // chunked bodies too (from net/http's transport)
			if err != nil {
				return
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return
			}
			if req.Method == http.MethodHead {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
				continue
			}
			echo := req.URL.Path + " " + string(body)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(echo))+"\r\n\r\n"+echo)
		}
	})
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr})
	cl := dialClient(t, sc.addr)
	inner := "GET /open/inner HTTP/1.1\r\nHost: edge.test\r\n\r\n"
	cl.write("POST /open/a HTTP/1.1\r\nHost: edge.test\r\nContent-Length: " + strconv.Itoa(len(inner)) + "\r\n\r\n" + inner +
		"POST /nowhere HTTP/1.1\r\nHost: edge.test\r\nContent-Length: " + strconv.Itoa(len(inner)) + "\r\n\r\n" + inner +
		"HEAD /open/head HTTP/1.1\r\nHost: edge.test\r\n\r\n" +
		"POST /open/chunked HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strconv.FormatInt(int64(len(inner)), 16) + "\r\n" + inner + "\r\n0\r\n\r\n" +
		"GET /open/last HTTP/1.1\r\nHost: edge.test\r\n\r\n")
	want := []struct {
		method string
		status int
		body   string
	}{
		{http.MethodPost, 200, "/open/a " + inner},
		{http.MethodPost, 404, ""},
		{http.MethodHead, 200, ""},
		{http.MethodPost, 200, "/open/chunked " + inner},
		{http.MethodGet, 200, "/open/last "},
	}
	for i, w := range want {
		resp, body := cl.read(w.method)
		if resp.StatusCode != w.status || w.body != "" && body != w.body || w.method == http.MethodHead && body != "" {
			t.Fatalf("answer %d: %d %q, want %d %q", i, resp.StatusCode, body, w.status, w.body)
		}
	}
	if n := up.conns.Load(); n > 2 {
		t.Fatalf("%d upstream connections for one client's requests", n)
	}
}

// panickyHandler is a log handler that panics on access log lines: a bug
// in the request path, made to order.
type panickyHandler struct{ slog.Handler }

func (h panickyHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "request" {
		panic("access log handler failed")
	}
	return h.Handler.Handle(ctx, r)
}

// TestFastPathPanicClosesOnlyItsConnection: a panic while serving a
// request (a bug anywhere in the request path) ends that connection, as
// net/http's server does for a handler, not the whole sidecar; it is
// logged, and other connections keep being served.
func TestFastPathPanicClosesOnlyItsConnection(t *testing.T) {
	bothPaths(t, func(t *testing.T, netHTTP bool) {
		up := startUpstream(t)
		var logs syncbuf.Buffer
		sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: up.URL, DisableFastPath: netHTTP,
			Logger: slog.New(panickyHandler{slog.NewJSONHandler(&logs, nil)})})
		for i := 0; i < 2; i++ {
			cl := dialClient(t, sc.addr)
			cl.write("GET /open/x HTTP/1.1\r\nHost: edge.test\r\n\r\n")
			if _, err := cl.br.ReadByte(); err == nil {
				t.Fatal("an answer from a request whose serving panicked")
			}
		}
		if !netHTTP && !strings.Contains(logs.String(), "access log handler failed") {
			t.Fatalf("the panic is not logged:\n%s", logs.String())
		}
		if r := adminDo(t, sc, "GET", "/healthz"); r.StatusCode != 200 {
			t.Fatalf("healthz after the panics: %d", r.StatusCode)
		}
	})
}

// TestHeadsInPiecesHandOverWhole: a head that arrives in pieces — one the
// fast path takes, one whose chunked framing only shows in a later piece,
// one that outgrows the fast path's buffer — is answered as if it came at
// once: what the fast path read ahead goes to net/http with the connection.
func TestHeadsInPiecesHandOverWhole(t *testing.T) {
	up := startUpstream(t)
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: up.URL})
	cl := dialClient(t, sc.addr)
	big := strings.Repeat("h", 12<<10)
	requests := []struct {
		method string
		pieces []string
		body   int64
	}{
		{http.MethodGet, []string{"GET /open/a HTTP/1.1\r\nHo", "st: edge.test\r\n", "\r\n"}, 0},
		{http.MethodPost, []string{"POST /open/b HTTP/1.1\r\nHost: edge.test\r\n", "Transfer-Encoding: chunked\r\n\r\n3\r\nab", "c\r\n0\r\n\r\n"}, 3},
		{http.MethodGet, []string{"GET /open/c HTTP/1.1\r\nHost: edge.test\r\nX-Big: " + big[:6<<10], big[6<<10:] + "\r\n\r\n"}, 0},
		{http.MethodGet, []string{"GET /open/d HTTP/1.1\r\n", "Host: edge.test\r\n\r\n"}, 0},
	}
	for i, rq := range requests {
		for _, p := range rq.pieces {
			cl.write(p)
			tcptest.WaitDelivered(t, cl.c, 10*time.Second) // in the sidecar's queue before the next piece is sent
		}
		if resp, body := cl.read(rq.method); resp.StatusCode != 200 || !strings.Contains(body, "upstream says 200") {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		got := up.take()
		if len(got) != 1 || got[0].Body != rq.body {
			t.Fatalf("request %d: the upstream received %+v", i, got)
		}
	}
}

// TestInformationalAnswersOnBothPaths: a 103 Early Hints before the final
// answer to a GET reaches the client on both paths (the net/http path's
// lean transport once answered such a GET with 502).
func TestInformationalAnswersOnBothPaths(t *testing.T) {
	bothPaths(t, func(t *testing.T, netHTTP bool) {
		up := startRawUpstream(t, func(string) rawReply {
			return rawReply{bytes: "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n" +
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}
		})
		sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr, DisableFastPath: netHTTP})
		cl := dialClient(t, sc.addr)
		cl.write("GET /open/hints HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		if resp, _ := cl.read(http.MethodGet); resp.StatusCode != 103 || resp.Header.Get("Link") != "</app.css>; rel=preload" {
			t.Fatalf("first: %d %v", resp.StatusCode, resp.Header)
		}
		if resp, body := cl.read(http.MethodGet); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("final: %d %q", resp.StatusCode, body)
		}
	})
}

// readRawHead reads one response head as it came on the wire.
func (cl *client) readRawHead() string {
	cl.t.Helper()
	var head strings.Builder
	for {
		line, err := cl.br.ReadString('\n')
		if err != nil {
			cl.t.Fatalf("reading a head: %v (so far %q)", err, head.String())
		}
		head.WriteString(line)
		if line == "\r\n" {
			return head.String()
		}
	}
}

// TestNoContentLengthOnBodylessStatuses: a Content-Length on a 1xx or 204
// answer is not framing (RFC 9110 §8.6: a server MUST NOT send one), and a
// client or front proxy that believed it would read the next answer as a
// body. Like net/http's server, the sidecar does not pass it on; on a HEAD
// answer it stays (it describes the GET's body).
func TestNoContentLengthOnBodylessStatuses(t *testing.T) {
	bothPaths(t, func(t *testing.T, netHTTP bool) {
		up := startRawUpstream(t, func(path string) rawReply {
			switch path {
			case "/open/hints":
				return rawReply{bytes: "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nContent-Length: 7\r\n\r\n" +
					"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}
			case "/open/head":
				return rawReply{bytes: "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"}
			}
			return rawReply{bytes: "HTTP/1.1 204 No Content\r\nX-Up: 1\r\nContent-Length: 5\r\n\r\n"}
		})
		sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr, DisableFastPath: netHTTP})
		cl := dialClient(t, sc.addr)
		cl.write("GET /open/none HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		if head := cl.readRawHead(); !strings.HasPrefix(head, "HTTP/1.1 204") || strings.Contains(strings.ToLower(head), "content-length") {
			t.Fatalf("204 head: %q", head)
		}
		cl.write("GET /open/hints HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		if head := cl.readRawHead(); !strings.HasPrefix(head, "HTTP/1.1 103") || strings.Contains(strings.ToLower(head), "content-length") {
			t.Fatalf("103 head: %q", head)
		}
		if resp, body := cl.read(http.MethodGet); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("after the 103: %d %q", resp.StatusCode, body)
		}
		cl.write("HEAD /open/head HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		if head := cl.readRawHead(); !strings.Contains(head, "Content-Length: 9\r\n") {
			t.Fatalf("HEAD head: %q", head)
		}
	})
}

// idleTimeout is the upstream timeout of the pooling tests: long enough for
// every answer on a loaded machine, short enough to idle past.
const idleTimeout = 500 * time.Millisecond

// idlePastDeadline lets a pooled connection's real socket deadline, set
// idleTimeout ahead by its last exchange, pass: the kernel keeps that time,
// no clock can stand in for it.
func idlePastDeadline() { time.Sleep(idleTimeout + 100*time.Millisecond) }

// TestPooledConnectionReusedAfterIdle: a pooled upstream connection that
// idled longer than the upstream timeout is still reused. (The liveness
// peek fails on a connection whose old read deadline has passed; armed
// first, it sees the connection as it is.)
func TestPooledConnectionReusedAfterIdle(t *testing.T) {
	bothPaths(t, func(t *testing.T, netHTTP bool) {
		up := startRawUpstream(t, func(string) rawReply {
			return rawReply{bytes: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}
		})
		p := parsePolicy(t, strings.Replace(fastPolicy, "timeout: 2s", "timeout: "+idleTimeout.String(), 1))
		sc := startSidecar(t, sidecar.Options{Policy: p, Upstream: "http://" + up.addr, DisableFastPath: netHTTP})
		cl := dialClient(t, sc.addr)
		for i := 0; i < 3; i++ {
			if resp, _ := cl.get("/open/x"); resp.StatusCode != 200 {
				t.Fatalf("request %d: %d", i, resp.StatusCode)
			}
			cl.write("POST /open/y HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 2\r\n\r\nhi")
			if resp, _ := cl.read(http.MethodPost); resp.StatusCode != 200 {
				t.Fatalf("request %d: %d", i, resp.StatusCode)
			}
			idlePastDeadline() // idle past the upstream timeout
		}
		want := int64(1)
		if netHTTP {
			want = 2 // the POSTs go through http.Transport's own pool
		}
		if n := up.conns.Load(); n != want {
			t.Fatalf("%d upstream connections for sequential requests, want %d", n, want)
		}
	})
}

// TestPooledConnectionSharedAcrossPathsAfterIdle: a connection the fast
// path pooled, idle past its deadline, is reused by the net/http path's
// lean transport for a connection handed over to net/http.
func TestPooledConnectionSharedAcrossPathsAfterIdle(t *testing.T) {
	up := startScriptedUpstream(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	p := parsePolicy(t, strings.Replace(fastPolicy, "timeout: 2s", "timeout: "+idleTimeout.String(), 1))
	sc := startSidecar(t, sidecar.Options{Policy: p, Upstream: "http://" + up.addr})
	cl := dialClient(t, sc.addr)
	if resp, _ := cl.get("/open/fast"); resp.StatusCode != 200 {
		t.Fatalf("fast: %d", resp.StatusCode)
	}
	idlePastDeadline() // idle past the upstream timeout
	// A chunked upload hands the connection to net/http (its own transport
	// for the upload); the GET behind it takes the lean transport's pool.
	cl.write("POST /open/up HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
	if resp, _ := cl.read(http.MethodPost); resp.StatusCode != 200 {
		t.Fatalf("handed over: %d", resp.StatusCode)
	}
	if resp, _ := cl.get("/open/lean"); resp.StatusCode != 200 {
		t.Fatalf("lean: %d", resp.StatusCode)
	}
	if n := up.conns.Load(); n != 2 {
		t.Fatalf("%d upstream connections, want 2 (the fast path's, reused, and the upload's)", n)
	}
}

// TestStalledOrResetUpstreamBodyIsCut: a body delimited by the upstream's
// close (re-chunked for the client) that ends in a reset, and a body that
// stalls past the write timeout, both reach the client as cut — no final
// chunk, no complete Content-Length — never as a clean end.
func TestStalledOrResetUpstreamBodyIsCut(t *testing.T) {
	release, reset := make(chan struct{}), make(chan struct{})
	up := startScriptedUpstream(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		line, _, err := readHeadLines(br)
		if err != nil {
			return
		}
		if strings.Contains(line, "/reset") {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome of it")
			<-reset // the client has what came first
			_ = c.(*net.TCPConn).SetLinger(0)
			return // a reset, not a close
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome of it")
		<-release
	})
	t.Cleanup(func() { close(release) })
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, fastPolicy), Upstream: "http://" + up.addr,
		WriteTimeout: time.Second})
	for _, path := range []string{"/open/reset", "/open/stall"} {
		cl := dialClient(t, sc.addr)
		cl.write("GET " + path + " HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		resp, err := http.ReadResponse(cl.br, &http.Request{Method: http.MethodGet})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		start := make([]byte, len("some of it"))
		if _, err := io.ReadFull(resp.Body, start); err != nil || string(start) != "some of it" {
			t.Fatalf("%s: body starts %q (%v)", path, start, err)
		}
		if path == "/open/reset" {
			close(reset)
		}
		if rest, err := io.ReadAll(resp.Body); err == nil {
			t.Fatalf("%s: the body ended cleanly after %q", path, rest)
		}
	}
}
