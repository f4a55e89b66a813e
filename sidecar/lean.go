package sidecar

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"
)

// leanTransport is an HTTP/1.1 round-tripper for the proxy's hot path:
// body-less GET and HEAD requests to a plain-http upstream. It writes the
// request and reads the response on the calling goroutine over a pooled
// keep-alive connection, where http.Transport hands each request to two
// per-connection goroutines and back through channels — on a busy two-core
// proxy those hand-offs cost more than the work. Everything else (bodies,
// other methods, upgrades, TLS) goes to the full http.Transport, which also
// handles what this one does not try to (1xx responses, HTTP/2, proxies).
//
// Only idempotent, body-less requests take this path, so a pooled
// connection that the upstream closed while idle can be retried once on a
// fresh one without any risk of doing something twice.
type leanTransport struct {
	full        http.RoundTripper
	dialer      net.Dialer
	maxIdle     int
	idleTimeout time.Duration
	maxHeader   int64

	mu   sync.Mutex
	idle map[string][]*leanConn // by host:port; LIFO keeps warm connections in use
}

type leanConn struct {
	conn     net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	limit    *io.LimitedReader
	lastUsed time.Time
	rd, wd   deadline // the fast path's deadlines (this path cancels instead)
	peek     peeker   // alive's state, made once per connection
}

// newLeanTransport wraps full, the transport for everything the lean path
// does not take.
func newLeanTransport(full http.RoundTripper) *leanTransport {
	return &leanTransport{
		full:        full,
		dialer:      net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle:     1024,
		idleTimeout: 90 * time.Second,
		maxHeader:   64 << 10,
		idle:        map[string][]*leanConn{},
	}
}

func (t *leanTransport) lean(req *http.Request) bool {
	return (req.Method == http.MethodGet || req.Method == http.MethodHead) &&
		(req.Body == nil || req.Body == http.NoBody) && req.ContentLength == 0 &&
		req.URL.Scheme == "http" && req.Header.Get("Upgrade") == "" && !req.Close
}

// RoundTrip sends req upstream.
func (t *leanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.lean(req) {
		return t.full.RoundTrip(req)
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		c, reused, err := t.get(ctx, req.URL.Host, attempt > 0, time.Time{}, 0)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(ctx, c, req)
		if err == nil {
			return resp, nil
		}
		_ = c.conn.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if !reused || attempt > 0 {
			return nil, err
		}
		// A pooled connection the upstream closed while idle: once more,
		// on a new connection (the request is idempotent and body-less).
	}
}

// exchange writes req on c and reads the response head; the body is read
// later through leanBody, which gives c back to the pool at its end.
func (t *leanTransport) exchange(ctx context.Context, c *leanConn, req *http.Request) (*http.Response, error) {
	// Cancellation (the upstream timeout, a client gone) closes the
	// connection, which unblocks any read or write on it.
	c.rd.clear() // a deadline the fast path left behind
	c.wd.clear()
	stop := context.AfterFunc(ctx, func() { _ = c.conn.Close() })
	if err := req.Write(c.bw); err != nil {
		stop()
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		stop()
		return nil, err
	}
	c.limit.N = t.maxHeader // bound the response head
	resp, err := http.ReadResponse(c.br, req)
	// Informational answers (103 Early Hints) go to the client through the
	// request's client trace, as http.Transport hands them to
	// httputil.ReverseProxy; the final answer follows on the connection.
	for n := 0; err == nil && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols && n < max1xx; n++ {
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err = trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
				break
			}
		}
		c.limit.N = t.maxHeader
		resp, err = http.ReadResponse(c.br, req)
	}
	if err != nil {
		stop()
		return nil, err
	}
	if resp.StatusCode < 200 {
		stop()
		_ = resp.Body.Close()
		return nil, fmt.Errorf("sidecar: upstream sent %d on a body-less %s", resp.StatusCode, req.Method)
	}
	c.limit.N = 1<<63 - 1 - int64(c.br.Size())
	lb := &leanBody{t: t, c: c, body: resp.Body, stop: stop, host: req.URL.Host, reusable: !resp.Close}
	if resp.Body == http.NoBody {
		lb.finish(true)
		return resp, nil
	}
	resp.Body = lb
	return resp, nil
}

// leanBody returns the connection to the pool once the body was read to its
// end, and closes it otherwise.
type leanBody struct {
	t        *leanTransport
	c        *leanConn
	body     io.ReadCloser
	stop     func() bool
	host     string
	reusable bool
	done     bool
}

func (b *leanBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

func (b *leanBody) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *leanBody) finish(complete bool) {
	b.done = true
	cancelled := !b.stop() // the context was cancelled: the conn is closed
	if complete && b.reusable && !cancelled {
		b.t.put(b.host, b.c)
		return
	}
	_ = b.c.conn.Close()
}

// get takes a pooled connection to host, or dials one (always when fresh:
// a retry must not meet the next stale connection of a restarted upstream).
// A pooled connection is used only if checked open and quiet: bytes the
// upstream sent while it idled would be read as this request's answer
// (another client's data, or a response smuggled by a body it misread).
//
// timeout > 0 (the fast path) bounds the attempt from from: the dial, and
// the read deadline, armed before the peek (which fails on a deadline a
// past request left behind, however alive the connection). Without one
// (this transport, which cancels through ctx instead) any deadline left
// behind is cleared.
func (t *leanTransport) get(ctx context.Context, host string, fresh bool, from time.Time, timeout time.Duration) (*leanConn, bool, error) {
	for !fresh {
		c := t.popIdle(host)
		if c == nil {
			break
		}
		c.rd.arm(from, timeout)
		if c.peek.alive(c.conn) {
			return c, true, nil
		}
		_ = c.conn.Close()
	}
	d := t.dialer
	if timeout > 0 {
		d.Deadline = from.Add(timeout)
	}
	c, err := t.dial(ctx, d, host)
	return c, false, err
}

// popIdle takes the most recently used idle connection to host, closing any
// it finds expired on the way; nil when there is none.
func (t *leanTransport) popIdle(host string) *leanConn {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		list := t.idle[host]
		if len(list) == 0 {
			return nil
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[host] = list[:len(list)-1]
		if now.Sub(c.lastUsed) < t.idleTimeout {
			return c
		}
		_ = c.conn.Close()
	}
}

// dial opens a new connection to host with d (t.dialer, or a copy of it
// with a deadline).
func (t *leanTransport) dial(ctx context.Context, d net.Dialer, host string) (*leanConn, error) {
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	lr := &io.LimitedReader{R: conn, N: t.maxHeader}
	c := &leanConn{conn: conn, br: bufio.NewReaderSize(lr, 16<<10), bw: bufio.NewWriterSize(conn, 4<<10), limit: lr}
	c.rd.set, c.wd.set = conn.SetReadDeadline, conn.SetWriteDeadline
	return c, nil
}

func (t *leanTransport) put(host string, c *leanConn) {
	if c.br.Buffered() > 0 {
		_ = c.conn.Close() // the upstream sent more than one response: do not trust it
		return
	}
	c.lastUsed = time.Now()
	t.mu.Lock()
	if len(t.idle[host]) < t.maxIdle {
		t.idle[host] = append(t.idle[host], c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	_ = c.conn.Close()
}

// CloseIdleConnections closes every pooled connection (both transports).
func (t *leanTransport) CloseIdleConnections() {
	t.mu.Lock()
	for host, list := range t.idle {
		for _, c := range list {
			_ = c.conn.Close()
		}
		delete(t.idle, host)
	}
	t.mu.Unlock()
	if ci, ok := t.full.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}
