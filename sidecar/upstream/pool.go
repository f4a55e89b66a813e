package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/contentguard/contentguard/sidecar/internal/h1"
)

// Pool keeps keep-alive HTTP/1.1 connections to upstreams, over TCP or TLS,
// for the fast path and the lean round-tripper: whoever takes a connection
// writes a request and reads the answer on its own goroutine, and gives the
// connection back only when the exchange left it clean.
type Pool struct {
	dialer      net.Dialer
	tls         *tls.Config // for https upstreams; nil: the system's roots
	maxIdle     int
	idleTimeout time.Duration
	maxHeader   int64

	mu   sync.Mutex
	idle map[endpoint][]*Conn // LIFO keeps warm connections in use
}

// endpoint is where a pooled connection goes: the address dialled, and
// whether TLS runs over it.
type endpoint struct {
	addr string
	tls  bool
}

func (t *Target) endpoint() endpoint { return endpoint{addr: t.Addr, tls: t.Scheme == "https"} }

// tlsHandshakeTimeout bounds a TLS handshake with an upstream (as
// NewTransport's TLSHandshakeTimeout).
const tlsHandshakeTimeout = 10 * time.Second

// Conn is one pooled upstream connection.
type Conn struct {
	conn     net.Conn // the TLS connection over raw, or raw
	raw      net.Conn // the TCP connection, which alive peeks at
	tls      bool
	limit    *io.LimitedReader
	lastUsed time.Time
	peek     peeker // alive's state, made once per connection

	// Reader and Writer buffer the connection; Reader is bounded while a
	// response head is read (see Unlimit).
	Reader *bufio.Reader
	Writer *bufio.Writer
	// ReadDeadline and WriteDeadline are the fast path's deadlines (the
	// lean round-tripper cancels through the request's context instead).
	ReadDeadline, WriteDeadline h1.Deadline
}

// Close closes the connection; it is not pooled again.
func (c *Conn) Close() error { return c.conn.Close() }

// Unlimit lifts the bound on what Reader may read, for a caller that bounds
// response heads itself (h1.ReadResponse).
func (c *Conn) Unlimit() { c.limit.N = 1<<63 - 1 }

// NewPool returns an empty pool: dials time out after 5 s, TLS handshakes
// after 10 s, at most 1024 idle connections an upstream are kept, each for
// at most 90 s. tlsConfig configures connections to https upstreams (roots,
// client certificate); nil means the system's roots. The server name is
// the upstream's host unless tlsConfig names one, and only HTTP/1.1 is
// offered.
func NewPool(tlsConfig *tls.Config) *Pool {
	return &Pool{
		dialer:      net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		tls:         tlsConfig,
		maxIdle:     1024,
		idleTimeout: 90 * time.Second,
		maxHeader:   64 << 10,
		idle:        map[endpoint][]*Conn{},
	}
}

// Get takes a pooled connection to t, or dials one (always when fresh:
// a retry must not meet the next stale connection of a restarted upstream).
// A pooled connection is used only if checked open and quiet: bytes the
// upstream sent while it idled would be read as this request's answer
// (another client's data, or a response smuggled by a body it misread).
// reused reports a pooled connection.
//
// timeout > 0 (the fast path) bounds the attempt from from: the dial, and
// the read deadline, armed before the peek (which fails on a deadline a
// past request left behind, however alive the connection). Without one
// (the lean round-tripper, which cancels through ctx instead) any deadline
// left behind is cleared.
func (p *Pool) Get(ctx context.Context, t *Target, fresh bool, from time.Time, timeout time.Duration) (c *Conn, reused bool, err error) {
	return p.get(ctx, t.endpoint(), fresh, from, timeout)
}

func (p *Pool) get(ctx context.Context, ep endpoint, fresh bool, from time.Time, timeout time.Duration) (c *Conn, reused bool, err error) {
	for !fresh {
		c := p.popIdle(ep)
		if c == nil {
			break
		}
		c.ReadDeadline.Arm(from, timeout)
		if c.peek.alive(c.raw) && c.quiet() {
			return c, true, nil
		}
		_ = c.conn.Close()
	}
	d := p.dialer
	if timeout > 0 {
		d.Deadline = from.Add(timeout)
	}
	c, err = p.dial(ctx, d, ep)
	return c, false, err
}

// quiet reports that a TLS connection holds no bytes the upstream sent
// while it idled: alive sees the socket, not what the TLS layer may
// already have read from it. A read with a deadline in the past returns
// such bytes, or at once a timeout (which leaves a TLS connection usable).
func (c *Conn) quiet() bool {
	if !c.tls {
		return true
	}
	_ = c.conn.SetReadDeadline(time.Unix(1, 0))
	_, err := c.Reader.Peek(1)
	c.ReadDeadline.Restore()
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// popIdle takes the most recently used idle connection to ep, closing any
// it finds expired on the way; nil when there is none.
func (p *Pool) popIdle(ep endpoint) *Conn {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		list := p.idle[ep]
		if len(list) == 0 {
			return nil
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		p.idle[ep] = list[:len(list)-1]
		if now.Sub(c.lastUsed) < p.idleTimeout {
			return c
		}
		_ = c.conn.Close()
	}
}

// dial opens a new connection to ep with d (p.dialer, or a copy of it
// with a deadline), and runs the TLS handshake for an https upstream.
func (p *Pool) dial(ctx context.Context, d net.Dialer, ep endpoint) (*Conn, error) {
	raw, err := d.DialContext(ctx, "tcp", ep.addr)
	if err != nil {
		return nil, err
	}
	conn := raw
	if ep.tls {
		if conn, err = p.handshake(ctx, raw, ep.addr, d.Deadline); err != nil {
			_ = raw.Close()
			return nil, err
		}
	}
	lr := &io.LimitedReader{R: conn, N: p.maxHeader}
	c := &Conn{conn: conn, raw: raw, tls: ep.tls, Reader: bufio.NewReaderSize(lr, 16<<10), Writer: bufio.NewWriterSize(conn, 4<<10), limit: lr}
	c.ReadDeadline.Set, c.WriteDeadline.Set = conn.SetReadDeadline, conn.SetWriteDeadline
	return c, nil
}

// handshake runs a TLS client handshake over raw with the upstream at addr,
// by deadline and within tlsHandshakeTimeout, offering HTTP/1.1 only.
func (p *Pool) handshake(ctx context.Context, raw net.Conn, addr string, deadline time.Time) (net.Conn, error) {
	cfg := &tls.Config{}
	if p.tls != nil {
		cfg = p.tls.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	cfg.NextProtos = []string{"http/1.1"}
	if limit := time.Now().Add(tlsHandshakeTimeout); deadline.IsZero() || deadline.After(limit) {
		deadline = limit
	}
	_ = raw.SetDeadline(deadline)
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	_ = raw.SetDeadline(time.Time{})
	return tc, nil
}

// Put gives c, whose last exchange with t ended cleanly, back to the pool.
func (p *Pool) Put(t *Target, c *Conn) { p.put(t.endpoint(), c) }

func (p *Pool) put(ep endpoint, c *Conn) {
	if c.Reader.Buffered() > 0 {
		_ = c.conn.Close() // the upstream sent more than one response: do not trust it
		return
	}
	c.lastUsed = time.Now()
	p.mu.Lock()
	if len(p.idle[ep]) < p.maxIdle {
		p.idle[ep] = append(p.idle[ep], c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	_ = c.conn.Close()
}

// CloseIdleConnections closes every pooled connection.
func (p *Pool) CloseIdleConnections() {
	p.mu.Lock()
	for ep, list := range p.idle {
		for _, c := range list {
			_ = c.conn.Close()
		}
		delete(p.idle, ep)
	}
	p.mu.Unlock()
}
