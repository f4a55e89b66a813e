package sidecar_test

import (
	"bufio"
	"context"
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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar"
	"github.com/contentguard/contentguard/telemetry"
)

// fakeUpstream is a real loopback HTTP server whose answers a test scripts
// step by step, and which records what it received. "Down" makes it accept
// connections and reset them at once (after closing its idle keep-alive
// connections), so the sidecar's attempt is observable yet fails.
type fakeUpstream struct {
	URL string
	ln  *switchListener
	srv *http.Server

	mu       sync.Mutex
	status   int
	delay    time.Duration
	received []received
}

type received struct {
	Method string
	Path   string // the request target's path, as on the wire
	Query  string
	Header http.Header
	Body   int64
}

func startUpstream(t testing.TB) *fakeUpstream {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &fakeUpstream{URL: "http://" + inner.Addr().String(), ln: &switchListener{Listener: inner}, status: http.StatusOK}
	u.srv = &http.Server{Handler: u, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = u.srv.Serve(u.ln) }()
	t.Cleanup(func() { _ = u.srv.Close() })
	return u
}

func (u *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	path, query, _ := strings.Cut(r.RequestURI, "?")
	u.mu.Lock()
	u.received = append(u.received, received{Method: r.Method, Path: path, Query: query, Header: r.Header.Clone(), Body: n})
	status, delay := u.status, u.delay
	u.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Upstream", "fake")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "upstream says "+strconv.Itoa(status))
}

// script sets how the next requests are answered; down resets connections.
func (u *fakeUpstream) script(status int, delay time.Duration, down bool) {
	if status == 0 {
		status = http.StatusOK
	}
	u.mu.Lock()
	u.status, u.delay = status, delay
	u.mu.Unlock()
	if down != u.ln.down.Load() {
		u.ln.down.Store(down)
		if down {
			// Idle keep-alive connections would still reach the handler.
			u.srv.SetKeepAlivesEnabled(false)
		} else {
			u.srv.SetKeepAlivesEnabled(true)
		}
	}
}

// count is how many requests arrived since the last take.
func (u *fakeUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.received)
}

func newJSONLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

// take returns and forgets what was received so far.
func (u *fakeUpstream) take() []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.received
	u.received = nil
	return r
}

// switchListener resets accepted connections while down, counting them.
type switchListener struct {
	net.Listener
	down    atomic.Bool
	refused atomic.Int64
}

func (l *switchListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.down.Load() {
			return c, err
		}
		l.refused.Add(1)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN: a connection failure
		}
		_ = c.Close()
	}
}

// running is one sidecar serving on loopback.
type running struct {
	srv    *sidecar.Server
	addr   string // public host:port
	admin  string // admin host:port
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// startSidecar runs a sidecar for opts (Policy must be set) on free
// loopback ports; it is stopped at cleanup.
func startSidecar(t testing.TB, opts sidecar.Options) *running {
	t.Helper()
	if opts.Registry == nil {
		opts.Registry = telemetry.NewRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := sidecar.New(ctx, opts)
	if err != nil {
		cancel()
		t.Fatalf("sidecar.New: %v", err)
	}
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &running{srv: srv, addr: pub.Addr().String(), admin: adm.Addr().String(), reg: opts.Registry, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Serve(ctx, pub, adm) }()
	t.Cleanup(r.stop)
	return r
}

// drainedOutcomes stops the sidecar, waits for Serve to return — it has
// drained every exchange — and returns how many outcomes it observed
// (upstream_outcomes_total counts every Observe, client faults too, which
// the breakers do not): a late duplicate Observe has happened by then, or
// never will.
func (r *running) drainedOutcomes(t testing.TB) int {
	t.Helper()
	r.cancel()
	r.serveReturns(t, 20*time.Second, "Serve did not return after cancel")
	return int(counterSum(t, r, sidecar.MetricUpstreamOutcomes, nil))
}

// serveReturns waits up to limit for Serve to return (after a cancel) and
// fails with why if it does not, or if it returned an error.
func (r *running) serveReturns(t testing.TB, limit time.Duration, why string) {
	t.Helper()
	select {
	case err := <-r.done:
		r.done = nil
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(limit):
		t.Fatal(why)
	}
}

// stop cancels Serve, waits for the drain and closes the server; it may be
// called more than once.
func (r *running) stop() {
	r.cancel()
	if r.done != nil {
		<-r.done
		r.done = nil
	}
	_ = r.srv.Close()
}

func loadPolicy(t testing.TB, path string) *policy.Policy {
	t.Helper()
	p, err := policyfile.Load(path)
	if err != nil {
		t.Fatalf("load policy: %v", err)
	}
	return p
}

func parsePolicy(t testing.TB, doc string) *policy.Policy {
	t.Helper()
	p, err := policyfile.Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("parse policy: %v", err)
	}
	return p
}

// rawRequest is one request written byte for byte: the target and header
// values go on the wire exactly as given.
type rawRequest struct {
	Method string
	Target string
	Header http.Header
	Body   []byte
	// Chunked sends Body with Transfer-Encoding: chunked (no length).
	Chunked bool
	// Peer is the local address to send from (any 127.0.0.0/8 address).
	Peer string
	// Wire holds the request line's variations (conformance.SentRequest:
	// version, no Host, empty lines before it); zero: HTTP/1.1 with Host.
	Wire conformance.SentRequest
}

type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// send dials addr from the request's peer address, writes the request and
// reads the response (Connection: close, one request per connection).
func send(t testing.TB, addr string, rq rawRequest) rawResponse {
	t.Helper()
	resp, err := trySend(addr, rq, 10*time.Second)
	if err != nil {
		t.Fatalf("%s %s from %s: %v", rq.Method, rq.Target, rq.Peer, err)
	}
	return resp
}

func trySend(addr string, rq rawRequest, timeout time.Duration) (rawResponse, error) {
	d := net.Dialer{Timeout: timeout}
	if rq.Peer != "" {
		ip := net.ParseIP(rq.Peer)
		if ip == nil {
			return rawResponse{}, fmt.Errorf("bad peer %q", rq.Peer)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return rawResponse{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	method := rq.Method
	if method == "" {
		method = http.MethodGet
	}
	var b strings.Builder
	wire := rq.Wire
	wire.Method, wire.Path = method, rq.Target
	if wire.Proto == "" {
		wire.Proto = "HTTP/1.1"
	}
	b.WriteString(wire.RequestLine("edge.test") + "Connection: close\r\n")
	for name, values := range rq.Header {
		for _, v := range values {
			b.WriteString(name + ": " + v + "\r\n")
		}
	}
	switch {
	case rq.Chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	case len(rq.Body) > 0:
		b.WriteString("Content-Length: " + strconv.Itoa(len(rq.Body)) + "\r\n\r\n")
	default:
		b.WriteString("\r\n")
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return rawResponse{}, err
	}
	if len(rq.Body) > 0 {
		if rq.Chunked {
			// Several chunks, so the sidecar sees a stream, not one read.
			for off := 0; off < len(rq.Body); off += 1024 {
				end := min(off+1024, len(rq.Body))
				if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", end-off, rq.Body[off:end]); err != nil {
					break // the sidecar may answer 413 and stop reading
				}
			}
			_, _ = io.WriteString(c, "0\r\n\r\n")
		} else if _, err := c.Write(rq.Body); err != nil && !errors.Is(err, net.ErrClosed) {
			return rawResponse{}, err
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		return rawResponse{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return rawResponse{}, err
	}
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// counterSum adds up the series of counter name whose labels include
// every pair of match (all series for nil); 0 when there are none yet.
func counterSum(t testing.TB, sc *running, name string, match map[string]string) float64 {
	t.Helper()
	mfs, err := sc.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range match {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
