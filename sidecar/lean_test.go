package sidecar

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/polltest"
)

// countingServer is a real HTTP server that counts the connections it
// accepted and closed; dropIdle makes it drop its keep-alive connection.
type countingServer struct {
	url      string
	srv      *http.Server
	accepted atomic.Int64
	closed   atomic.Int64
}

// dropIdle has the server close its keep-alive connection, as its idle
// timeout would, and waits until it has.
func (s *countingServer) dropIdle(t *testing.T) {
	t.Helper()
	want := s.closed.Load() + 1
	s.srv.SetKeepAlivesEnabled(false) // closes idle connections, and the busy ones when done
	if !polltest.Until(10*time.Second, func() bool { return s.closed.Load() >= want }) {
		t.Fatal("the server did not close its keep-alive connection")
	}
	s.srv.SetKeepAlivesEnabled(true)
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func startCounting(t *testing.T, h http.Handler, idle time.Duration) *countingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &countingServer{url: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: idle, MaxHeaderBytes: 1 << 20}}
	s.srv.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			s.closed.Add(1)
		}
	}
	go func() { _ = s.srv.Serve(countingListener{ln, &s.accepted}) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

func leanGet(t *testing.T, lt *leanTransport, method, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !lt.lean(req) {
		t.Fatalf("%s %s would not take the lean path", method, url)
	}
	return lt.RoundTrip(req)
}

func TestLeanTransportReusesAndRecovers(t *testing.T) {
	s := startCounting(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.URL.Path)
	}), time.Minute)
	lt := newLeanTransport(NewTransport())
	defer lt.CloseIdleConnections()
	for i := 0; i < 5; i++ {
		resp, err := leanGet(t, lt, "GET", s.url+"/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hello /x" {
			t.Fatalf("body %q", b)
		}
	}
	if n := s.accepted.Load(); n != 1 {
		t.Fatalf("%d connections for 5 sequential requests, want 1 (keep-alive)", n)
	}
	// HEAD has no body: the connection goes back at once.
	resp, err := leanGet(t, lt, "HEAD", s.url+"/h")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	resp.Body.Close()

	// The upstream drops its idle connection (as at its idle timeout): the
	// next request retries once on a fresh connection and succeeds.
	before := s.accepted.Load()
	s.dropIdle(t)
	resp, err = leanGet(t, lt, "GET", s.url+"/after")
	if err != nil {
		t.Fatalf("after the upstream closed idle connections: %v", err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := s.accepted.Load(); n != before+1 {
		t.Fatalf("%d connections, want %d", n, before+1)
	}

	// A body closed unread: the connection is not reused.
	resp, _ = leanGet(t, lt, "GET", s.url+"/unread")
	resp.Body.Close()
	resp, _ = leanGet(t, lt, "GET", s.url+"/next")
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := s.accepted.Load(); n != before+2 {
		t.Fatalf("%d connections, want %d (an unread body's connection is not pooled)", n, before+2)
	}
}

func TestLeanTransportBoundsAndCancels(t *testing.T) {
	block := make(chan struct{})
	s := startCounting(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big-head":
			w.Header().Set("X-Big", strings.Repeat("b", 100<<10))
		case "/slow":
			<-block
		}
		w.WriteHeader(200)
	}), time.Minute)
	defer close(block)
	lt := newLeanTransport(NewTransport())
	defer lt.CloseIdleConnections()
	if _, err := leanGet(t, lt, "GET", s.url+"/big-head"); err == nil {
		t.Fatal("a 100 KiB response head was accepted")
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("deadline")
	time.AfterFunc(50*time.Millisecond, func() { cancel(cause) })
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/slow", nil)
	if _, err := lt.RoundTrip(req); !errors.Is(err, cause) {
		t.Fatalf("cancelled request: %v, want the cancellation cause", err)
	}
	// Requests with bodies or other methods go to the full transport.
	post, _ := http.NewRequest("POST", s.url+"/", strings.NewReader("x"))
	if lt.lean(post) {
		t.Fatal("a POST with a body took the lean path")
	}
}
