package fastpath

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/sidecar/exchange"
	"github.com/contentguard/contentguard/sidecar/internal/h1"
	"github.com/contentguard/contentguard/sidecar/upstream"
	"github.com/contentguard/contentguard/telemetry"
)

const (
	// headBuffer is the connection's read buffer: request heads up to
	// this size take the fast path; larger ones go to net/http.
	headBuffer = 8 << 10
	// maxDiscard is how much of an unread request body (a rejected
	// upload) is read and dropped to keep the connection; past it the
	// connection closes (net/http's server does the same).
	maxDiscard = 256 << 10
	// rstAvoidanceDelay: after answering without reading a large body, the
	// write side is shut and the connection lingers this long before it
	// closes, so the client reads the answer before a reset (net/http's
	// value).
	rstAvoidanceDelay = 500 * time.Millisecond
)

// conn is one client connection and the state its requests reuse.
type conn struct {
	f       *Server
	c       net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	peer    netip.Addr
	peerStr string      // the peer's address as X-Forwarded-For carries it
	idle    atomic.Bool // waiting for a request: shutdown may close it
	rd, wd  h1.Deadline
	served  int // requests answered on this connection

	// since is when it last started waiting for a request (unix ns): the
	// drain closes connections idle for a while (sidecar/drain.go).
	since atomic.Int64

	// upstream is the upstream connection of the request in progress, for
	// shutdown to close when the drain times out.
	upstream atomic.Pointer[upstream.Conn]

	// What the answer leaves to do (afterAnswer): a rejected upload's body
	// to drop, or an unread one to linger over before closing.
	discard int64
	linger  bool

	req    h1.Request
	resp   h1.Response
	header http.Header // the request's fields for the engine, cleared per request
	values []string    // backing array of header's values
	x      exchange.Exchange
	ctx    context.Context // the request's; the client span's while it is forwarded
}

func newConn(f *Server, c net.Conn) *conn {
	fc := &conn{
		f:      f,
		c:      c,
		br:     bufio.NewReaderSize(c, headBuffer),
		bw:     bufio.NewWriterSize(c, 4<<10),
		header: make(http.Header, 16),
		values: make([]string, 0, h1.MaxFields),
	}
	fc.rd.Set, fc.wd.Set = c.SetReadDeadline, c.SetWriteDeadline
	remote := c.RemoteAddr().String()
	fc.peer = exchange.PeerAddr(remote)
	if fc.peer.IsValid() {
		fc.peerStr, _, _ = net.SplitHostPort(remote)
	}
	return fc
}

func (fc *conn) serve() {
	defer fc.f.forget(fc)
	defer fc.recoverPanic()
	for {
		head, err := fc.readHead()
		if err == nil {
			var keep bool
			if keep, err = fc.serveRequest(head); err == nil {
				if keep {
					continue
				}
				_ = fc.c.Close()
				return
			}
		}
		if err == errHandoff {
			fc.f.handoff.push(&handoffConn{Conn: fc.c, r: fc.br})
			return
		}
		_ = fc.c.Close()
		return
	}
}

// recoverPanic ends the connection whose serving panicked (a bug), as
// net/http's server does for a handler: one connection lost, not the whole
// sidecar with every request in flight.
func (fc *conn) recoverPanic() {
	r := recover()
	if r == nil {
		return
	}
	stack := make([]byte, 16<<10)
	stack = stack[:runtime.Stack(stack, false)]
	fc.f.log.Error("panic serving a connection", "peer", fc.peerStr, "panic", fmt.Sprint(r), "stack", string(stack))
	_ = fc.c.Close()
	if uc := fc.upstream.Load(); uc != nil {
		_ = uc.Close() // possibly mid-exchange
	}
}

// readHead waits for the next request and returns its head, still unread
// in fc.br: the caller discards it once it takes the request.
func (fc *conn) readHead() (string, error) {
	f, br := fc.f, fc.br
	if br.Buffered() == 0 {
		fc.idle.Store(true)
		if f.draining.Load() {
			return "", errClosing
		}
		// A new connection must send its first head within the header
		// timeout (as net/http's server): idling is for keep-alive.
		wait := f.idleTimeout
		if fc.served == 0 {
			wait = f.readHeaderTimeout
		}
		now := time.Now()
		fc.since.Store(now.UnixNano())
		fc.rd.Arm(now, wait)
		_, err := br.Peek(1)
		fc.idle.Store(false)
		if err != nil {
			return "", err
		}
	}
	if err := fc.skipEmptyLines(); err != nil {
		return "", err
	}
	b, _ := br.Peek(br.Buffered())
	n, err := h1.HeadEnd(b)
	if n < 0 && err == nil {
		// The head arrives in pieces: the header timeout applies.
		fc.rd.Arm(time.Now(), f.readHeaderTimeout)
		for n < 0 && err == nil {
			if br.Buffered() == br.Size() {
				return "", errHandoff // a large head: net/http reads it
			}
			if _, err := br.Peek(br.Buffered() + 1); err != nil {
				return "", err
			}
			b, _ = br.Peek(br.Buffered())
			n, err = h1.HeadEnd(b)
		}
	}
	if err != nil {
		return "", errHandoff
	}
	return string(b[:n]), nil
}

// maxEmptyLineBytes bounds the CR and LF bytes skipped before a request
// line; a client that sends more is left to net/http (which refuses it).
const maxEmptyLineBytes = 16

// skipEmptyLines drops the empty lines a client sent before its request
// line (some send a CRLF after a body, as old browsers did after a POST):
// RFC 9112 §2.2 has a server ignore at least one, as NGINX does. At least
// one byte is buffered on entry and on a nil return.
func (fc *conn) skipEmptyLines() error {
	br := fc.br
	for skipped := 0; ; skipped++ {
		b, _ := br.Peek(1)
		if b[0] != '\r' && b[0] != '\n' {
			return nil
		}
		if skipped == maxEmptyLineBytes {
			return errHandoff
		}
		_, _ = br.Discard(1)
		if br.Buffered() == 0 {
			fc.rd.Arm(time.Now(), fc.f.readHeaderTimeout)
			if _, err := br.Peek(1); err != nil {
				return err
			}
		}
	}
}

// serveRequest answers the request whose head is head, or returns
// errHandoff before reading anything of it. keep reports whether the
// connection stays open for another request.
func (fc *conn) serveRequest(head string) (keep bool, err error) {
	f, req := fc.f, &fc.req
	if err := h1.ParseRequest(head, req); err != nil {
		return false, errHandoff
	}
	pl := f.sc.Plane()
	path := req.Path()
	if f.sc.Local(path) {
		return false, errHandoff // in-process handlers are http.Handlers
	}
	_, _ = fc.br.Discard(len(head))
	start := time.Now()
	method := internMethod(req.Method)

	x := &fc.x
	header := fc.fillHeader()
	ctx := context.Background()
	var span trace.Span
	if f.rec.Traced() {
		ctx, span = f.rec.StartServer(ctx, header)
	}
	*x = exchange.Exchange{Plane: pl, Peer: fc.peer}
	fc.ctx = ctx
	x.Decision = pl.Engine.Check(ctx, edge.Request{
		Method:        method,
		Host:          req.Host,
		Path:          path,
		RawQuery:      req.RawQuery(),
		Header:        header,
		Peer:          fc.peer,
		ContentLength: req.ContentLength,
	})
	if x.Decision.Allow {
		keep = fc.forwardTraced(x, method)
		fc.upstream.Store(nil)
	} else {
		keep = fc.reject(x, method)
	}
	// Logged and counted before the last bytes go out, as on the net/http
	// path: whoever has the answer can find its log line and metrics.
	f.rec.Finish(x, method, ctx, span, start, false)
	if err := fc.bw.Flush(); err != nil {
		keep = false
	}
	keep = fc.afterAnswer(keep)
	fc.served++
	return keep, nil
}

// fillHeader is the request's header as net/http would give it to a
// handler: canonical names, values in order, Host moved out.
func (fc *conn) fillHeader() http.Header {
	h := fc.header
	clear(h)
	vals := fc.values[:0]
	for _, fd := range fc.req.Fields {
		if h1.EqualFold(fd.Name, "Host") {
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(fd.Name)
		if v, ok := h[k]; ok {
			h[k] = append(v, fd.Value)
			continue
		}
		vals = append(vals, fd.Value)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	return h
}

// reject answers with the engine's decision; a body the client sent along
// is read and dropped (up to maxDiscard) so the connection can stay.
func (fc *conn) reject(x *exchange.Exchange, method string) bool {
	cl := fc.req.ContentLength
	closing := fc.closing() || cl > maxDiscard
	fc.writeDecision(&x.Decision, method, closing)
	x.Status = x.Decision.Status
	x.Written = int64(len(x.Decision.Body))
	if closing {
		fc.linger = cl > 0
		return false
	}
	fc.discard = cl // after the answer: the client may wait for it
	return true
}

// afterAnswer finishes a request once its answer is out: it drops the body
// of a rejected upload, or lingers before closing on one it did not read.
// It reports whether the connection can carry another request.
func (fc *conn) afterAnswer(keep bool) bool {
	discard, linger := fc.discard, fc.linger
	fc.discard, fc.linger = 0, false
	if linger {
		// The client may still be sending a body nobody reads: shut the
		// write side and wait a moment before the close, so that it sees
		// the answer rather than a reset.
		if tc, ok := fc.c.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
			time.Sleep(rstAvoidanceDelay)
		}
		return false
	}
	if keep && discard > 0 {
		fc.rd.Arm(time.Now(), fc.f.readTimeout)
		if n, _ := fc.br.Discard(int(discard)); int64(n) != discard {
			return false
		}
	}
	return keep
}

// closing reports whether this response is the connection's last.
func (fc *conn) closing() bool {
	return fc.req.Close || fc.f.draining.Load() || fc.f.lastCall.Load()
}

// writeDecision writes a locally made answer (rejection, preflight, 502,
// 504) into the connection's buffer.
func (fc *conn) writeDecision(d *edge.Decision, method string, closing bool) {
	fc.wd.Arm(time.Now(), fc.f.writeTimeout)
	w, names := fc.bw, fc.x.Plane.Names
	h1.WriteStatusLine(w, d.Status, http.StatusText(d.Status))
	writeDecisionHeaders(w, d, names)
	bodyless := d.Status == http.StatusNoContent || d.Status == http.StatusNotModified || d.Status < 200
	if d.ContentType != "" && len(d.Body) > 0 {
		h1.WriteField(w, "Content-Type", d.ContentType)
	}
	if !bodyless {
		_, _ = w.WriteString("Content-Length: ")
		_, _ = w.WriteString(strconv.Itoa(len(d.Body)))
		_, _ = w.WriteString("\r\n")
	}
	_, _ = w.Write(fc.f.dateLine())
	if closing {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	_, _ = w.WriteString("\r\n")
	if !bodyless && method != http.MethodHead {
		_, _ = w.Write(d.Body)
	}
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// internMethod returns the standard methods as constants (see
// telemetry.BoundedMethod), so that nothing downstream keeps a request's head
// alive; other methods stay as they are for the engine to judge.
func internMethod(m string) string {
	if b := telemetry.BoundedMethod(m); b != telemetry.OtherMethod {
		return b
	}
	return m
}

// writeDecisionHeaders writes the decision's response and security headers
// (canonical names, as the net/http path sends them).
func writeDecisionHeaders(w *bufio.Writer, d *edge.Decision, names exchange.HeaderNames) {
	for _, kv := range d.ResponseHeaders {
		h1.WriteField(w, names.Canonical(kv[0]), kv[1])
	}
	for _, kv := range d.SecurityHeaders {
		h1.WriteField(w, names.Canonical(kv[0]), kv[1])
	}
}
