package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/tcptest"
	"github.com/contentguard/contentguard/internal/tlstest"
	"github.com/contentguard/contentguard/sidecar/internal/h1"
)

// tlsUpstream is a loopback TLS server whose connections serve runs on,
// given the TLS connection and the TCP one under it.
func tlsUpstream(t *testing.T, serve func(tc *tls.Conn, raw net.Conn)) (Target, *tls.Config, *atomic.Int64) {
	t.Helper()
	srvCfg, roots := tlstest.Loopback(t)
	var conns atomic.Int64
	addr := tcptest.Serve(t, func(raw net.Conn) {
		defer raw.Close()
		conns.Add(1)
		_ = raw.SetDeadline(time.Now().Add(20 * time.Second))
		serve(tls.Server(raw, srvCfg), raw)
	})
	target, err := ParseTarget("https://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	return target, &tls.Config{RootCAs: roots}, &conns
}

// exchangeOn writes a GET on c and reads the answer's head and body, as
// the fast path does.
func exchangeOn(t *testing.T, c *Conn) string {
	t.Helper()
	c.Unlimit()
	_, _ = io.WriteString(c.Writer, "GET / HTTP/1.1\r\nHost: upstream.test\r\n\r\n")
	if err := c.Writer.Flush(); err != nil {
		t.Fatal(err)
	}
	var resp h1.Response
	if err := h1.ReadResponse(c.Reader, &resp); err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	w := bufio.NewWriter(&body)
	if _, rerr, werr := h1.CopyN(w, c.Reader, resp.ContentLength); rerr != nil || werr != nil {
		t.Fatal(rerr, werr)
	}
	_ = w.Flush()
	return body.String()
}

// readRequests reads request heads on br and answers each with answer.
func answerEach(tc *tls.Conn, answer func(i int) string) {
	br := bufio.NewReader(tc)
	for i := 0; ; i++ {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		if _, err := io.WriteString(tc, answer(i)); err != nil {
			return
		}
	}
}

// TestPoolTLS: connections to an https upstream are TLS, verified against
// the configured roots, offer HTTP/1.1 only, and are pooled and reused
// like plain ones.
func TestPoolTLS(t *testing.T) {
	var alpn atomic.Value
	target, cfg, conns := tlsUpstream(t, func(tc *tls.Conn, _ net.Conn) {
		if err := tc.Handshake(); err != nil {
			return
		}
		alpn.Store(tc.ConnectionState().NegotiatedProtocol)
		answerEach(tc, func(int) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" })
	})
	cfg.NextProtos = []string{"h2", "http/1.1"} // the pool offers HTTP/1.1 whatever the configuration says
	p := NewPool(cfg)
	defer p.CloseIdleConnections()
	for i := 0; i < 3; i++ {
		c, reused, err := p.Get(context.Background(), &target, false, time.Now(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if reused != (i > 0) {
			t.Fatalf("request %d: reused %v", i, reused)
		}
		if body := exchangeOn(t, c); body != "ok" {
			t.Fatalf("body %q", body)
		}
		p.Put(&target, c)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for three requests, want 1", n)
	}
	if got := alpn.Load(); got != "" && got != "http/1.1" {
		t.Fatalf("negotiated %q", got)
	}

	// Without the roots the certificate is refused: no connection.
	if _, _, err := NewPool(nil).Get(context.Background(), &target, true, time.Now(), 5*time.Second); err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
}

// TestPoolTLSStrayBytesAreNotReused: an answer nobody asked for, sent by a
// TLS upstream right behind the real one, may already sit in the TLS
// layer's buffer — read from the socket with the real answer's record —
// where the socket peek cannot see it. The pooled connection must still
// not be reused: those bytes would be the next request's answer.
func TestPoolTLSStrayBytesAreNotReused(t *testing.T) {
	delivered := make(chan struct{})
	var first atomic.Bool
	target, cfg, conns := tlsUpstream(t, func(tc *tls.Conn, raw net.Conn) {
		stray := first.CompareAndSwap(false, true) // the first connection only
		answerEach(tc, func(i int) string {
			if !stray || i > 0 {
				return "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"
			}
			// Two records, back to back, both in the client's socket
			// buffer before it reads the first.
			_, _ = io.WriteString(tc, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
			_, _ = io.WriteString(tc, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nLEAKED")
			if err := tcptest.AwaitDelivered(raw, 10*time.Second); err != nil {
				t.Error(err)
			}
			close(delivered)
			return ""
		})
	})
	p := NewPool(cfg)
	defer p.CloseIdleConnections()
	c, _, err := p.Get(context.Background(), &target, false, time.Now(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Unlimit()
	_, _ = io.WriteString(c.Writer, "GET / HTTP/1.1\r\nHost: upstream.test\r\n\r\n")
	_ = c.Writer.Flush()
	<-delivered
	var resp h1.Response
	if err := h1.ReadResponse(c.Reader, &resp); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reader.Discard(int(resp.ContentLength)); err != nil {
		t.Fatal(err)
	}
	// What this test is about: the stray answer is neither in the socket
	// (the TLS layer read it with the first record) nor in the buffered
	// reader (a TLS read returns one record).
	if c.Reader.Buffered() != 0 {
		t.Fatalf("%d stray bytes in the reader: the case is not the one under test", c.Reader.Buffered())
	}
	c.ReadDeadline.Arm(time.Now(), 5*time.Second)
	if !c.peek.alive(c.raw) {
		t.Fatal("the socket peek saw the stray bytes: the case is not the one under test")
	}
	p.Put(&target, c)
	c2, reused, err := p.Get(context.Background(), &target, false, time.Now(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if reused || c2 == c {
		t.Fatal("the connection holding a stray answer was reused")
	}
	if body := exchangeOn(t, c2); body != "second" {
		t.Fatalf("the next request got %q", body)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}
