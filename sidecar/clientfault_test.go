package sidecar_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/syncbuf"
	"github.com/contentguard/contentguard/sidecar"
)

// faultPolicy trips the breaker after three upstream failures and keeps it
// open; bodies must arrive within 300ms, the upstream answer within 300ms
// of the hand-over.
const faultPolicy = `
apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: faults}
spec:
  upstream: {url: http://127.0.0.1:9, timeout: 300ms}
  circuitBreaker: {consecutiveFailures: 3, openFor: 1h}
  limits: {maxBodyBytes: 1MiB}
  routes:
    - name: open
      match: {pathPrefix: /}
      auth: none
      bodyTimeout: 300ms
`

// rawExchange writes raw on a fresh connection, half-closes the write side
// when halfClose, and reads one response.
func rawExchange(addr, raw string, halfClose bool) (*http.Response, string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		return nil, "", err
	}
	if halfClose {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodPost})
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

// TestClientFaultsDoNotOpenTheBreaker: 20 clients that send their bodies
// too slowly and 20 that send malformed or cut bodies, all at once, get
// 408 and 400 problems, are counted as client faults (metrics and access
// log) and leave the breaker closed: the next request is forwarded. An
// upstream that hangs still opens it.
func TestClientFaultsDoNotOpenTheBreaker(t *testing.T) {
	bothPaths(t, func(t *testing.T, netHTTP bool) {
		up := startUpstream(t)
		var logs syncbuf.Buffer
		sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, faultPolicy), Upstream: up.URL,
			DisableFastPath: netHTTP, Logger: newJSONLogger(&logs)})

		type client struct {
			raw       string
			halfClose bool
			status    int
			reason    string
		}
		var clients []client
		for i := 0; i < 20; i++ {
			// Ten bytes of a hundred, then nothing.
			clients = append(clients, client{raw: "POST /slow HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 100\r\n\r\nten bytes.",
				status: http.StatusRequestTimeout, reason: "client_timeout"})
		}
		malformed := []client{
			{raw: "POST /bad HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
			{raw: "POST /bad HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"},
			{raw: "POST /bad HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: chunked\r\n\r\na\r\nhello", halfClose: true},
			{raw: "POST /bad HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 100\r\n\r\nshort", halfClose: true},
		}
		for i := 0; i < 20; i++ {
			c := malformed[i%len(malformed)]
			c.status, c.reason = http.StatusBadRequest, "malformed_body"
			clients = append(clients, c)
		}
		var wg sync.WaitGroup
		errs := make(chan string, len(clients))
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, body, err := rawExchange(sc.addr, c.raw, c.halfClose)
				switch {
				case err != nil:
					errs <- fmt.Sprintf("%q: %v", c.raw, err)
				case resp.StatusCode != c.status || !strings.Contains(body, `"reason":"`+c.reason+`"`):
					errs <- fmt.Sprintf("%q: %d %s, want %d %s", c.raw, resp.StatusCode, body, c.status, c.reason)
				case !resp.Close:
					errs <- fmt.Sprintf("%q: the connection stays open with the body unread", c.raw)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}

		if v := breakerGauge(t, sc); v != 0 {
			t.Fatalf("circuit_breaker_state = %v after client faults only, want 0 (closed)", v)
		}
		if n := counterSum(t, sc, sidecar.MetricUpstreamOutcomes, map[string]string{"fault": "client"}); n != 40 {
			t.Errorf("client faults counted: %v, want 40", n)
		}
		if n := counterSum(t, sc, sidecar.MetricUpstreamOutcomes, map[string]string{"fault": "upstream"}); n != 0 {
			t.Errorf("upstream faults counted: %v, want 0", n)
		}
		if r := get(t, sc.addr, "/next", "", nil); r.Status != http.StatusOK || r.Header.Get("X-Upstream") != "fake" {
			t.Fatalf("the next normal request: %d %s", r.Status, r.Body)
		}
		faults := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var e struct{ Msg, Path, Reason, Fault string }
			if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "request" {
				faults[e.Path+" "+e.Reason+" "+e.Fault]++
			}
		}
		if faults["/slow client_timeout client"] != 20 || faults["/bad malformed_body client"] != 20 || faults["/next allowed none"] != 1 {
			t.Errorf("access log: %v", faults)
		}

		// The upstream's own fault still counts: three hung answers open
		// the breaker, and the fourth request is not forwarded.
		up.script(http.StatusOK, time.Hour, false)
		for i := 0; i < 3; i++ {
			if r := get(t, sc.addr, "/hang", "", nil); r.Status != http.StatusGatewayTimeout || problemReason(t, r) != "upstream_timeout" {
				t.Fatalf("hung upstream %d: %d %s", i, r.Status, r.Body)
			}
		}
		up.take()
		if r := get(t, sc.addr, "/hang", "", nil); r.Status != http.StatusServiceUnavailable || problemReason(t, r) != "circuit_open" {
			t.Fatalf("after three upstream timeouts: %d %s", r.Status, r.Body)
		}
		if n := counterSum(t, sc, sidecar.MetricUpstreamOutcomes, map[string]string{"fault": "upstream", "reason": "upstream_timeout"}); n != 3 {
			t.Errorf("upstream timeouts counted: %v, want 3", n)
		}
	})
}

// TestUpstreamTimeoutStartsAtHandOver: a body that takes longer to arrive
// than the upstream's timeout (but within its own) is forwarded whole and
// answered: the upstream's clock starts when it has the whole request.
func TestUpstreamTimeoutStartsAtHandOver(t *testing.T) {
	bothPaths(t, func(t *testing.T, netHTTP bool) {
		up := startUpstream(t)
		p := parsePolicy(t, strings.Replace(faultPolicy, "bodyTimeout: 300ms", "bodyTimeout: 30s", 1))
		sc := startSidecar(t, sidecar.Options{Policy: p, Upstream: up.URL, DisableFastPath: netHTTP})
		cl := dialClient(t, sc.addr)
		cl.write("POST /upload HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 10\r\n\r\nfirst")
		// Not ordering: the point is that more than the upstream's timeout
		// (300ms) passes while the body is incomplete.
		<-time.After(time.Second)
		cl.write("-half")
		resp, body := cl.read(http.MethodPost)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("slow body within its timeout: %d %s", resp.StatusCode, body)
		}
		if got := up.take(); len(got) != 1 || got[0].Body != 10 {
			t.Fatalf("upstream received %+v", got)
		}
	})
}

// TestEmptyLineBeforeRequestLine: RFC 9112 §2.2 — an empty line before a
// request line on a kept-alive connection is ignored. The fast path
// ignores it after any request (and before the first); net/http's server
// only after a POST, which is where clients send one.
func TestEmptyLineBeforeRequestLine(t *testing.T) {
	bothPaths(t, func(t *testing.T, netHTTP bool) {
		up := startUpstream(t)
		sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, faultPolicy), Upstream: up.URL, DisableFastPath: netHTTP})
		cl := dialClient(t, sc.addr)
		cl.write("POST /a HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 2\r\n\r\nhi")
		if resp, _ := cl.read(http.MethodPost); resp.StatusCode != http.StatusOK {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
		cl.write("\r\nGET /b HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		if resp, body := cl.read(http.MethodGet); resp.StatusCode != http.StatusOK {
			t.Fatalf("empty line after a POST: %d %s", resp.StatusCode, body)
		}
		if netHTTP {
			return
		}
		cl.write("\r\n\r\nGET /c HTTP/1.1\r\nHost: edge.test\r\n\r\n")
		if resp, body := cl.read(http.MethodGet); resp.StatusCode != http.StatusOK {
			t.Fatalf("empty lines after a GET: %d %s", resp.StatusCode, body)
		}
		if got := up.take(); len(got) != 3 {
			t.Fatalf("upstream received %d requests, want 3", len(got))
		}
	})
}

// TestHTTP10TransferEncodingCloses: RFC 9112 §6.1 — an HTTP/1.0 request
// with Transfer-Encoding has faulty framing: it is answered (its body
// ignored, as net/http does) and the connection closes, so the chunks are
// never read as another request.
func TestHTTP10TransferEncodingCloses(t *testing.T) {
	bothPaths(t, func(t *testing.T, netHTTP bool) {
		up := startUpstream(t)
		sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, faultPolicy), Upstream: up.URL, DisableFastPath: netHTTP})
		cl := dialClient(t, sc.addr)
		cl.write("POST /a HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"1c\r\nGET /smuggled HTTP/1.1\r\nX: \r\n0\r\n\r\n")
		resp, _ := cl.read(http.MethodPost)
		if !resp.Close {
			t.Fatalf("%d without Connection: close", resp.StatusCode)
		}
		if _, err := io.ReadAll(cl.br); err != nil {
			t.Fatalf("after the answer: %v, want the connection closed", err)
		}
		for _, r := range up.take() {
			if r.Path != "/a" || r.Body != 0 {
				t.Errorf("upstream received %s with %d body bytes", r.Path, r.Body)
			}
		}
	})
}
