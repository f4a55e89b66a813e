package traefikload_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/internal/tcptest"
)

// captureWriter is a ResponseWriter as a Traefik middleware in front of the
// plugin wraps it (the access log's capture writer): Header, Write and
// WriteHeader, no Unwrap. Through it the plugin cannot set the body's read
// deadline (http.ResponseController says ErrNotSupported), so only its
// upstream timer bounds a slow body. It keeps the answer's status and
// body: net/http's server sends an answer to a request whose body is
// unread only once it has read the rest, or the client has gone.
type captureWriter struct {
	rw     http.ResponseWriter
	status int
	body   strings.Builder
}

func (c *captureWriter) Header() http.Header { return c.rw.Header() }

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.body.Write(b)
	return c.rw.Write(b)
}

func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.rw.WriteHeader(code)
}

// answer is what the plugin answered, as the capture writer saw it.
type answer struct {
	status int
	reason string
}

// readEntered wraps the body as the client sends it and says, once, when a
// Read starts after the first bytes came: the proxy is then waiting on the
// client for the rest. It sits under the plugin's own body reader, which
// marks the read as waiting before it gets here — above it, the test could
// fire the timers before the plugin knew the proxy waited.
type readEntered struct {
	io.ReadCloser
	got     int
	once    sync.Once
	waiting chan<- struct{}
}

func (r *readEntered) Read(p []byte) (int, error) {
	if r.got > 0 {
		r.once.Do(func() { r.waiting <- struct{}{} })
	}
	n, err := r.ReadCloser.Read(p)
	r.got += n
	return n, err
}

// slowBodyEdge is the plugin, under breaker.yaml (three consecutive
// failures open the breaker), behind a real HTTP server and a capture
// writer, in front of proxy. Its upstream timers fire when the test says.
// With waiting set, the request bodies say on it when the proxy waits for
// the client (readEntered).
func slowBodyEdge(t *testing.T, proxy http.Handler, waiting chan<- struct{}) (addr string, clock *planeClock, answers <-chan answer) {
	t.Helper()
	p := loadPlugin(t)
	clock = newPlaneClock()
	ctx := withClock(context.Background(), clock)
	policy := filepath.Join(conformance.Dir(), "policies", "breaker.yaml")
	building.Lock()
	h, err := p.New(ctx, proxy, map[string]any{"policyFile": policy}, uniqueName("slowbody"))
	building.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan answer, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &captureWriter{rw: w}
		if waiting != nil {
			r.Body = &readEntered{ReadCloser: r.Body, waiting: waiting}
		}
		h.ServeHTTP(c, r)
		out <- answer{status: c.status, reason: reasonOf(c.body.String())}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), clock, out
}

// sendPartial sends a POST declaring 100 bytes of body and sends 10, waits
// until the proxy waits for more, fires the middleware's timers (its time
// is up), calls then (if set) with the connection, and returns the
// plugin's answer; then the client goes.
func sendPartial(t *testing.T, addr string, clock *planeClock, waiting <-chan struct{}, answers <-chan answer, then func(net.Conn)) answer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = io.WriteString(c, "POST /work HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 100\r\n\r\n0123456789")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-waiting:
	case <-time.After(time.Minute):
		t.Fatal("the proxy never waited for the rest of the body")
	}
	clock.fire()
	if then != nil {
		then(c)
	}
	select {
	case a := <-answers:
		return a
	case <-time.After(time.Minute):
		t.Fatal("the plugin did not answer once its time was up")
	}
	return answer{}
}

// reasonOf is the reason of a problem+json body.
func reasonOf(s string) string {
	const key = `"reason":"`
	if i := strings.Index(s, key); i >= 0 {
		s = s[i+len(key):]
		if j := strings.IndexByte(s, '"'); j >= 0 {
			return s[:j]
		}
	}
	return ""
}

func postWhole(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/work", "text/plain", strings.NewReader("whole body"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, reasonOf(string(b))
}

// TestSlowBodyIsTheClientsFault: where the plugin cannot set the body's read
// deadline, its upstream timer (upstream timeout plus body timeout while
// the body arrives) is all that bounds a slow body. When it fires while the
// proxy is still waiting for the client's body, the client is late, not
// the service: 408 client_timeout, and the breaker counts nothing — three
// slow clients (breaker.yaml opens after three failures) leave the next
// request forwarded.
//
// The client trickles: once the proxy has given up on the service (closed
// its connection to it), one more byte arrives, and with it the proxy's
// attempt ends — after the plugin's time was up, while it waited on the
// client.
func TestSlowBodyIsTheClientsFault(t *testing.T) {
	// The service: a real socket that answers a whole request with 200,
	// and says when the proxy has closed a connection instead.
	closed := make(chan struct{}, 1)
	serviceAddr := tcptest.Serve(t, func(c net.Conn) {
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err == nil {
			_, err = io.Copy(io.Discard, req.Body)
		}
		if err != nil {
			closed <- struct{}{}
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	})
	transport := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(transport.CloseIdleConnections)
	service := &url.URL{Scheme: "http", Host: serviceAddr}
	waiting := make(chan struct{}, 1)
	addr, clock, answers := slowBodyEdge(t, traefikProxy(service, transport), waiting)
	trickle := func(c net.Conn) {
		select {
		case <-closed:
		case <-time.After(time.Minute):
			t.Fatal("the proxy kept its connection to the service after its request was cancelled")
		}
		if _, err := io.WriteString(c, "x"); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		a := sendPartial(t, addr, clock, waiting, answers, trickle)
		if a.status != http.StatusRequestTimeout || a.reason != "client_timeout" {
			t.Fatalf("slow body %d: %d %s, want 408 client_timeout", i+1, a.status, a.reason)
		}
	}
	if status, reason := postWhole(t, addr); status != http.StatusOK {
		t.Fatalf("after three slow clients: %d %s, want 200 (the breaker counted the clients' faults)", status, reason)
	}
}

// TestUpstreamNotReadingIsTheUpstreamsFault is the other side: a service
// that stops reading the body (the proxy is stuck sending it, not waiting
// for the client) and never answers is the service's fault — 504
// upstream_timeout, and three of them open the breaker.
func TestUpstreamNotReadingIsTheUpstreamsFault(t *testing.T) {
	stuck := make(chan struct{}, 1)
	// The proxy has read a first chunk and is stuck writing it to a
	// service that reads no more; cancelled, it answers as Traefik's
	// proxy does, 499.
	proxy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 10)
		_, _ = io.ReadFull(r.Body, buf)
		stuck <- struct{}{}
		<-r.Context().Done()
		w.WriteHeader(499)
		_, _ = io.WriteString(w, "Client Closed Request")
	})
	addr, clock, answers := slowBodyEdge(t, proxy, nil)
	for i := 0; i < 3; i++ {
		a := sendPartial(t, addr, clock, stuck, answers, nil)
		if a.status != http.StatusGatewayTimeout || a.reason != "upstream_timeout" {
			t.Fatalf("stuck upstream %d: %d %s, want 504 upstream_timeout", i+1, a.status, a.reason)
		}
	}
	if status, reason := postWhole(t, addr); status != http.StatusServiceUnavailable || reason != "circuit_open" {
		t.Fatalf("after three upstream timeouts: %d %s, want 503 circuit_open", status, reason)
	}
}

// TestBrokenBodiesAreTheClientsFault: a malformed chunked body, a body cut
// short by the client's going, and a chunked body past maxBodyBytes end the
// proxy's attempt through the plugin's body reader: each is the client's
// fault (400 malformed_body, nothing, 413 body_too_large), and three of
// each leave the breaker (breaker.yaml: three failures open it) closed.
func TestBrokenBodiesAreTheClientsFault(t *testing.T) {
	up := startUpstream(t)
	addr, _, answers := slowBodyEdge(t, traefikProxy(up.url, http.DefaultTransport), nil)
	bodies := []struct {
		name, head, body string
		closeWrite       bool
		status           int
		reason           string
	}{
		{name: "bad chunk size", head: "Transfer-Encoding: chunked", body: "zz\r\nhello\r\n0\r\n\r\n",
			status: http.StatusBadRequest, reason: "malformed_body"},
		{name: "cut short", head: "Content-Length: 100", body: "0123456789", closeWrite: true,
			status: http.StatusBadRequest, reason: "malformed_body"},
		{name: "chunked past maxBodyBytes", head: "Transfer-Encoding: chunked",
			body:   "100001\r\n" + strings.Repeat("x", 1<<20+1) + "\r\n0\r\n\r\n", // 1 MiB + 1, the default limit + 1
			status: http.StatusRequestEntityTooLarge, reason: "body_too_large"},
	}
	for _, b := range bodies {
		for i := 0; i < 3; i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				_, _ = io.WriteString(c, "POST /work HTTP/1.1\r\nHost: edge.test\r\n"+b.head+"\r\n\r\n"+b.body)
				if b.closeWrite {
					_ = c.(*net.TCPConn).CloseWrite()
				}
			}()
			var a answer
			select {
			case a = <-answers:
			case <-time.After(time.Minute):
				t.Fatalf("%s: no answer", b.name)
			}
			_ = c.Close()
			if a.status != b.status || a.reason != b.reason {
				t.Fatalf("%s %d: %d %s, want %d %s", b.name, i+1, a.status, a.reason, b.status, b.reason)
			}
		}
	}
	if status, reason := postWhole(t, addr); status != http.StatusOK {
		t.Fatalf("after nine broken bodies: %d %s, want 200 (the breaker counted the clients' faults)", status, reason)
	}
}
