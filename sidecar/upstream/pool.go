package upstream

import (
	"bufio"
	"context"
	"io"
	"net"
	"sync"
	"time"

	"github.com/contentguard/contentguard/sidecar/internal/h1"
)

// Pool keeps keep-alive HTTP/1.1 connections to upstreams, by the host:port
// dialled (Target.Addr), for
// the fast path and the lean round-tripper: whoever takes a connection
// writes a request and reads the answer on its own goroutine, and gives the
// connection back only when the exchange left it clean.
type Pool struct {
	dialer      net.Dialer
	maxIdle     int
	idleTimeout time.Duration
	maxHeader   int64

	mu   sync.Mutex
	idle map[string][]*Conn // by host:port; LIFO keeps warm connections in use
}

// Conn is one pooled upstream connection.
type Conn struct {
	conn     net.Conn
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

// NewPool returns an empty pool: dials time out after 5 s, at most 1024
// idle connections a host are kept, each for at most 90 s.
func NewPool() *Pool {
	return &Pool{
		dialer:      net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle:     1024,
		idleTimeout: 90 * time.Second,
		maxHeader:   64 << 10,
		idle:        map[string][]*Conn{},
	}
}

// Get takes a pooled connection to addr, or dials one (always when fresh:
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
func (p *Pool) Get(ctx context.Context, addr string, fresh bool, from time.Time, timeout time.Duration) (c *Conn, reused bool, err error) {
	for !fresh {
		c := p.popIdle(addr)
		if c == nil {
			break
		}
		c.ReadDeadline.Arm(from, timeout)
		if c.peek.alive(c.conn) {
			return c, true, nil
		}
		_ = c.conn.Close()
	}
	d := p.dialer
	if timeout > 0 {
		d.Deadline = from.Add(timeout)
	}
	c, err = p.dial(ctx, d, addr)
	return c, false, err
}

// popIdle takes the most recently used idle connection to host, closing any
// it finds expired on the way; nil when there is none.
func (p *Pool) popIdle(host string) *Conn {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		list := p.idle[host]
		if len(list) == 0 {
			return nil
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		p.idle[host] = list[:len(list)-1]
		if now.Sub(c.lastUsed) < p.idleTimeout {
			return c
		}
		_ = c.conn.Close()
	}
}

// dial opens a new connection to host with d (p.dialer, or a copy of it
// with a deadline).
func (p *Pool) dial(ctx context.Context, d net.Dialer, host string) (*Conn, error) {
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	lr := &io.LimitedReader{R: conn, N: p.maxHeader}
	c := &Conn{conn: conn, Reader: bufio.NewReaderSize(lr, 16<<10), Writer: bufio.NewWriterSize(conn, 4<<10), limit: lr}
	c.ReadDeadline.Set, c.WriteDeadline.Set = conn.SetReadDeadline, conn.SetWriteDeadline
	return c, nil
}

// Put gives c, whose last exchange ended cleanly, back to the pool.
func (p *Pool) Put(host string, c *Conn) {
	if c.Reader.Buffered() > 0 {
		_ = c.conn.Close() // the upstream sent more than one response: do not trust it
		return
	}
	c.lastUsed = time.Now()
	p.mu.Lock()
	if len(p.idle[host]) < p.maxIdle {
		p.idle[host] = append(p.idle[host], c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	_ = c.conn.Close()
}

// CloseIdleConnections closes every pooled connection.
func (p *Pool) CloseIdleConnections() {
	p.mu.Lock()
	for host, list := range p.idle {
		for _, c := range list {
			_ = c.conn.Close()
		}
		delete(p.idle, host)
	}
	p.mu.Unlock()
}
