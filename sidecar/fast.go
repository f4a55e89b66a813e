package sidecar

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/sidecar/internal/h1"
	"github.com/contentguard/contentguard/telemetry"
)

// The fast path.
//
// net/http's server spends more CPU on a small proxied request than the
// proxying itself: a goroutine woken to watch every connection for a close
// while the handler runs, a Request, a header map and a response writer per
// request, and a chunking writer in between. On a two-core pod that made the
// sidecar cost three to four times NGINX's CPU per request. So the public
// listener is served by fastServer: one goroutine per connection reads a
// request head, asks the engine, writes the forwarded head and streams the
// body to a pooled upstream connection on the same goroutine, and streams
// the response back — the shape of NGINX's loop, with Go's blocking I/O.
//
// It takes only what package h1 accepts (keep-alive HTTP/1.1 in origin
// form with at most a Content-Length body: what API clients send) and only
// while the plane forwards over plain HTTP with the default transport; it
// starts the same spans as the net/http path. At the first request it does
// not take, it hands the
// connection, with that request still unread, to the net/http server and
// its httputil.ReverseProxy, which serve the connection from then on. Both
// paths ask the same engine the same question (the same edge.Request), so
// they decide alike; the conformance suite runs through both.

const (
	// fastHeadBuffer is the connection's read buffer: request heads up to
	// this size take the fast path; larger ones go to net/http.
	fastHeadBuffer = 8 << 10
	// maxResponseHead bounds an upstream's response head (as
	// NewTransport's MaxResponseHeaderBytes).
	maxResponseHead = 64 << 10
	// maxDiscard is how much of an unread request body (a rejected
	// upload) is read and dropped to keep the connection; past it the
	// connection closes (net/http's server does the same).
	maxDiscard = 256 << 10
	// rstAvoidanceDelay: after answering without reading a large body, the
	// write side is shut and the connection lingers this long before it
	// closes, so the client reads the answer before a reset (net/http's
	// value).
	rstAvoidanceDelay = 500 * time.Millisecond
	// max1xx bounds the informational responses relayed before the final
	// one.
	max1xx = 8
)

var (
	// errHandoff: the request is for net/http.
	errHandoff = errors.New("sidecar: handoff to net/http")
	// errClosing: the server is shutting down and the connection is idle.
	errClosing = errors.New("sidecar: shutting down")
)

// fastServer serves the public listener. See "The fast path" above.
type fastServer struct {
	s       *Server
	p       *proxy
	up      *leanTransport
	handoff *handoffListener

	readHeaderTimeout, readTimeout, writeTimeout, idleTimeout time.Duration

	mu       sync.Mutex
	conns    map[*fastConn]struct{}
	draining atomic.Bool
	lastCall atomic.Bool // the drain delay: every answer says Connection: close (see drain.go)
	wg       sync.WaitGroup

	date atomic.Pointer[dateLine]
}

// newFastServer serves s with pub's timeouts; pub serves handoff.
func newFastServer(s *Server, up *leanTransport, pub *http.Server) *fastServer {
	return &fastServer{
		s:                 s,
		p:                 s.proxy,
		up:                up,
		handoff:           newHandoffListener(),
		readHeaderTimeout: pub.ReadHeaderTimeout,
		readTimeout:       pub.ReadTimeout,
		writeTimeout:      pub.WriteTimeout,
		idleTimeout:       pub.IdleTimeout,
		conns:             map[*fastConn]struct{}{},
	}
}

// serve accepts connections on ln until it fails or is closed (then it
// returns nil if the server is shutting down).
func (f *fastServer) serve(ln net.Listener) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if f.draining.Load() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: back off as net/http
			// does, instead of spinning.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			f.s.log.Warn("accept failed; retrying", "err", err.Error(), "delay", delay.String())
			time.Sleep(delay)
			continue
		}
		delay = 0
		fc := f.track(c)
		if fc == nil {
			_ = c.Close()
			continue
		}
		go fc.serve()
	}
}

func (f *fastServer) track(c net.Conn) *fastConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.draining.Load() {
		return nil
	}
	fc := newFastConn(f, c)
	f.conns[fc] = struct{}{}
	f.wg.Add(1)
	return fc
}

func (f *fastServer) forget(fc *fastConn) {
	f.mu.Lock()
	delete(f.conns, fc)
	f.mu.Unlock()
	f.wg.Done()
}

// shutdown stops taking requests: idle connections close now, busy ones
// after their current response (which says Connection: close). It waits
// for them until ctx ends, then closes what is left.
func (f *fastServer) shutdown(ctx context.Context) error {
	f.draining.Store(true)
	f.mu.Lock()
	for fc := range f.conns {
		if fc.idle.Load() {
			_ = fc.c.Close()
		}
	}
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		for fc := range f.conns {
			_ = fc.c.Close()
			// A request waiting on its upstream (a stalled body) would
			// not notice its client's close until a timeout minutes away.
			if uc := fc.upstream.Load(); uc != nil {
				_ = uc.conn.Close()
			}
		}
		f.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// fastConn is one client connection and the state its requests reuse.
type fastConn struct {
	f       *fastServer
	c       net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	peer    netip.Addr
	peerStr string      // the peer's address as X-Forwarded-For carries it
	idle    atomic.Bool // waiting for a request: shutdown may close it
	rd, wd  deadline
	served  int // requests answered on this connection

	// since is when it last started waiting for a request (unix ns): the
	// drain closes connections idle for a while (drain.go).
	since atomic.Int64

	// upstream is the upstream connection of the request in progress, for
	// shutdown to close when the drain times out.
	upstream atomic.Pointer[leanConn]

	// What the answer leaves to do (afterAnswer): a rejected upload's body
	// to drop, or an unread one to linger over before closing.
	discard int64
	linger  bool

	req    h1.Request
	resp   h1.Response
	header http.Header // the request's fields for the engine, cleared per request
	values []string    // backing array of header's values
	x      exchange
}

func newFastConn(f *fastServer, c net.Conn) *fastConn {
	fc := &fastConn{
		f:      f,
		c:      c,
		br:     bufio.NewReaderSize(c, fastHeadBuffer),
		bw:     bufio.NewWriterSize(c, 4<<10),
		header: make(http.Header, 16),
		values: make([]string, 0, h1.MaxFields),
	}
	fc.rd.set, fc.wd.set = c.SetReadDeadline, c.SetWriteDeadline
	remote := c.RemoteAddr().String()
	fc.peer = peerAddr(remote)
	if fc.peer.IsValid() {
		fc.peerStr, _, _ = net.SplitHostPort(remote)
	}
	return fc
}

func (fc *fastConn) serve() {
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
func (fc *fastConn) recoverPanic() {
	r := recover()
	if r == nil {
		return
	}
	stack := make([]byte, 16<<10)
	stack = stack[:runtime.Stack(stack, false)]
	fc.f.s.log.Error("panic serving a connection", "peer", fc.peerStr, "panic", fmt.Sprint(r), "stack", string(stack))
	_ = fc.c.Close()
	if uc := fc.upstream.Load(); uc != nil {
		_ = uc.conn.Close() // possibly mid-exchange
	}
}

// readHead waits for the next request and returns its head, still unread
// in fc.br: the caller discards it once it takes the request.
func (fc *fastConn) readHead() (string, error) {
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
		fc.rd.arm(now, wait)
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
		fc.rd.arm(time.Now(), f.readHeaderTimeout)
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
func (fc *fastConn) skipEmptyLines() error {
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
			fc.rd.arm(time.Now(), fc.f.readHeaderTimeout)
			if _, err := br.Peek(1); err != nil {
				return err
			}
		}
	}
}

// serveRequest answers the request whose head is head, or returns
// errHandoff before reading anything of it. keep reports whether the
// connection stays open for another request.
func (fc *fastConn) serveRequest(head string) (keep bool, err error) {
	f, req := fc.f, &fc.req
	if err := h1.ParseRequest(head, req); err != nil {
		return false, errHandoff
	}
	pl := f.s.state.Load()
	if pl.target.scheme != "http" {
		return false, errHandoff
	}
	path := req.Path()
	if f.s.isLocal(path) {
		return false, errHandoff // in-process handlers are http.Handlers
	}
	_, _ = fc.br.Discard(len(head))
	start := time.Now()
	method := internMethod(req.Method)

	x := &fc.x
	header := fc.fillHeader()
	ctx := context.Background()
	var span trace.Span
	if f.p.traced {
		ctx = f.p.propagator.Extract(ctx, propagation.HeaderCarrier(header))
		ctx, span = f.p.tracer.Start(ctx, "edge", trace.WithSpanKind(trace.SpanKindServer))
	}
	*x = exchange{Context: ctx, pl: pl, peer: fc.peer}
	x.d = pl.engine.Check(ctx, edge.Request{
		Method:        method,
		Host:          req.Host,
		Path:          path,
		RawQuery:      req.RawQuery(),
		Header:        header,
		Peer:          fc.peer,
		ContentLength: req.ContentLength,
	})
	if x.d.Allow {
		keep = fc.forwardTraced(x, method)
		fc.upstream.Store(nil)
	} else {
		keep = fc.reject(x, method)
	}
	// Logged and counted before the last bytes go out, as on the net/http
	// path: whoever has the answer can find its log line and metrics.
	f.p.finish(x, method, ctx, span, start, false)
	if err := fc.bw.Flush(); err != nil {
		keep = false
	}
	keep = fc.afterAnswer(keep)
	fc.served++
	return keep, nil
}

// fillHeader is the request's header as net/http would give it to a
// handler: canonical names, values in order, Host moved out.
func (fc *fastConn) fillHeader() http.Header {
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
func (fc *fastConn) reject(x *exchange, method string) bool {
	cl := fc.req.ContentLength
	closing := fc.closing() || cl > maxDiscard
	fc.writeDecision(&x.d, method, closing)
	x.rec.status = x.d.Status
	x.rec.written = int64(len(x.d.Body))
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
func (fc *fastConn) afterAnswer(keep bool) bool {
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
		fc.rd.arm(time.Now(), fc.f.readTimeout)
		if n, _ := fc.br.Discard(int(discard)); int64(n) != discard {
			return false
		}
	}
	return keep
}

// closing reports whether this response is the connection's last.
func (fc *fastConn) closing() bool {
	return fc.req.Close || fc.f.draining.Load() || fc.f.lastCall.Load()
}

// writeDecision writes a locally made answer (rejection, preflight, 502,
// 504) into the connection's buffer.
func (fc *fastConn) writeDecision(d *edge.Decision, method string, closing bool) {
	fc.wd.arm(time.Now(), fc.f.writeTimeout)
	w, names := fc.bw, fc.x.pl.names
	writeStatusLine(w, d.Status, http.StatusText(d.Status))
	writeDecisionHeaders(w, d, names)
	bodyless := d.Status == http.StatusNoContent || d.Status == http.StatusNotModified || d.Status < 200
	if d.ContentType != "" && len(d.Body) > 0 {
		writeField(w, "Content-Type", d.ContentType)
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

// forwardTraced is forward inside a client span when spans are exported:
// its context goes upstream in traceparent, as on the net/http path.
func (fc *fastConn) forwardTraced(x *exchange, method string) bool {
	p := fc.f.p
	if !p.traced {
		return fc.forward(x, method)
	}
	var cspan trace.Span
	x.Context, cspan = p.tracer.Start(x.Context, "upstream "+telemetry.BoundedMethod(method), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("server.address", x.pl.target.host)))
	keep := fc.forward(x, method)
	if x.reason != "" {
		cspan.SetStatus(codes.Error, x.reason)
	}
	cspan.End()
	return keep
}

// forward sends an allowed request upstream and relays the answer. It
// reports whether the client connection stays open.
func (fc *fastConn) forward(x *exchange, method string) bool {
	f, req, d := fc.f, &fc.req, &x.d
	t := &x.pl.target
	x.trusted = trustedPeer(x.pl.trusted, fc.peer)
	x.sent = time.Now()
	// A pooled connection is used only if checked open and quiet (see
	// leanTransport.get). The upstream may still close it between the check
	// and the write: a body-less idempotent request, which may be sent
	// twice, is then retried once on a new connection.
	retriable := req.ContentLength == 0 && idempotent(method)
	var (
		uc    *leanConn
		reuse bool
		err   error
	)
	for attempt := 0; ; {
		if uc, reuse, err = f.up.get(context.Background(), t.host, attempt > 0, x.sent, d.Timeout); err != nil {
			// The body is still unread: it must not be taken for the
			// next request.
			return fc.upstreamFailed(x, method, err, req.ContentLength > 0)
		}
		fc.upstream.Store(uc)
		uc.limit.N = 1<<63 - 1
		// The upstream's timeout runs from the hand-over of the whole
		// request; while the body streams, the upstream must take it
		// within the body's timeout plus its own.
		wait := d.Timeout
		if req.ContentLength > 0 {
			wait += d.BodyTimeout
		}
		uc.wd.arm(x.sent, wait)
		var clientErr bool
		if clientErr, err = fc.writeUpstream(uc, x, method); err == nil {
			uc.rd.arm(time.Now(), d.Timeout)
			err = readResponse(uc.br, &fc.resp)
		} else if !clientErr && req.ContentLength > 0 && fc.earlyAnswer(uc, d) {
			// The upstream answered before it took the whole body (a 413,
			// a 401) and closed: that answer is the answer, not a 502
			// (nor a connection failure for the breaker). The rest of the
			// body is unread, so neither connection carries another
			// request.
			fc.resp.Close = true
			fc.req.Close = true
			fc.relay(x, uc, method)
			fc.linger = true
			return false
		}
		if err == nil {
			break
		}
		_ = uc.conn.Close()
		if clientErr {
			return fc.clientFailed(x, method, err)
		}
		if reuse && retriable && attempt == 0 && !isTimeout(err) {
			attempt++
			continue
		}
		return fc.upstreamFailed(x, method, err, req.ContentLength > 0)
	}
	return fc.relay(x, uc, method)
}

// earlyAnswer reads an answer the upstream may have sent before it stopped
// taking the body, from now on (a long upload may have outlived the
// deadline armed before it).
func (fc *fastConn) earlyAnswer(uc *leanConn, d *edge.Decision) bool {
	uc.rd.arm(time.Now(), d.Timeout)
	return readResponse(uc.br, &fc.resp) == nil
}

// clientFailed answers a request whose body the client failed to deliver
// (edge.BodyFault): 408, 413 or 400, or nothing to a client that is gone. The
// rest of the body is unread, so the connection closes either way.
func (fc *fastConn) clientFailed(x *exchange, method string, err error) bool {
	if f, answer := x.clientFailed(edge.BodyFault(err)); answer {
		x.rec.written = int64(len(f.Body))
		fc.writeDecision(&f, method, true)
		fc.linger = true
	}
	return false
}

// writeUpstream writes the forwarded head and the request body on uc.
// clientErr reports that reading the body from the client failed.
func (fc *fastConn) writeUpstream(uc *leanConn, x *exchange, method string) (clientErr bool, err error) {
	req, d, pl := &fc.req, &x.d, x.pl
	w := uc.bw
	_, _ = w.WriteString(method)
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(pl.target.base)
	_, _ = w.WriteString(d.Path)
	if q := req.RawQuery(); q != "" {
		_ = w.WriteByte('?')
		_, _ = w.WriteString(q)
	}
	_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = w.WriteString(pl.target.host)
	_, _ = w.WriteString("\r\n")
	// With spans exported, the client span's context replaces the
	// client's trace headers (propagation.HeaderCarrier.Set, as on the
	// net/http path).
	var injected propagation.HeaderCarrier
	if fc.f.p.traced {
		injected = propagation.HeaderCarrier{}
		fc.f.p.propagator.Inject(x.Context, injected)
	}
	te := false
	for _, fd := range req.Fields {
		if injected != nil && carries(injected, fd.Name) {
			continue
		}
		if forwardField(fd.Name, d) {
			writeField(w, fd.Name, fd.Value)
		} else if !te && h1.EqualFold(fd.Name, "Te") && h1.HasToken(fd.Value, "trailers") {
			// As httputil.ReverseProxy: the client's willingness to
			// accept trailers is end-to-end information, said once
			// however many Te fields said it.
			te = true
			_, _ = w.WriteString("Te: trailers\r\n")
		}
	}
	for _, kv := range d.UpstreamHeaders {
		writeField(w, pl.names.canonical(kv[0]), kv[1])
	}
	for name, values := range injected {
		for _, v := range values {
			writeField(w, name, v)
		}
	}
	xff, proto, host := forwardedValues(fc.header, req.Host, false, fc.peerStr, x.trusted)
	if xff != "" {
		writeField(w, "X-Forwarded-For", xff)
	}
	writeField(w, "X-Forwarded-Proto", proto)
	if host != "" {
		writeField(w, "X-Forwarded-Host", host)
	}
	_, _ = w.WriteString("\r\n")
	if req.ContentLength > 0 {
		// The body must arrive within the route's body timeout.
		fc.rd.arm(x.sent, orReadTimeout(d.BodyTimeout, fc.f.readTimeout))
		if _, rerr, werr := copyN(w, fc.br, req.ContentLength); rerr != nil || werr != nil {
			if rerr != nil {
				return true, rerr
			}
			return false, werr
		}
	}
	return false, w.Flush()
}

// carries reports whether the propagator's headers include name.
func carries(h propagation.HeaderCarrier, name string) bool {
	for k := range h {
		if h1.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// forwardField reports whether a client's field goes upstream: not the
// hop-by-hop ones, not Host (the upstream's is written), not the
// X-Forwarded-* and Forwarded fields (written afresh), and not the fields
// the decision strips or sets (httputil.ReverseProxy's Rewrite mode and
// Decision.SetUpstreamHeaders, the same rules).
func forwardField(name string, d *edge.Decision) bool {
	if h1.IsRequestHopByHop(name) || h1.EqualFold(name, "Host") || h1.EqualFold(name, "Forwarded") ||
		h1.EqualFold(name, "X-Forwarded-For") || h1.EqualFold(name, "X-Forwarded-Proto") ||
		h1.EqualFold(name, "X-Forwarded-Host") {
		return false
	}
	return !d.Strips(name)
}

// upstreamFailed answers an allowed request that got no upstream answer:
// 504 after the decision's timeout, 502 otherwise.
func (fc *fastConn) upstreamFailed(x *exchange, method string, err error, withBody bool) bool {
	o := edge.Outcome{Connection: true}
	if isTimeout(err) {
		o = edge.Outcome{Timeout: true}
	} else {
		fc.f.s.log.Debug("upstream unreachable", "request_id", x.d.RequestID, "err", err.Error())
	}
	x.observe(o)
	fd := x.pl.engine.UpstreamFailure(x.d, o)
	x.reason = fd.Reason
	x.rec.status = fd.Status
	x.rec.written = int64(len(fd.Body))
	// A request body may be unread, whole or in part (the upstream could
	// not be dialled, or stopped taking it): the connection cannot carry
	// another request, or the body's bytes would be read as one.
	closing := fc.closing() || withBody
	fc.writeDecision(&fd, method, closing)
	fc.linger = withBody
	return !closing
}

// relay writes the upstream's response to the client: head (with the
// decision's headers) and body, then returns uc to the pool if the
// exchange left it clean. The caller flushes the end of it.
func (fc *fastConn) relay(x *exchange, uc *leanConn, method string) bool {
	f, resp, w := fc.f, &fc.resp, fc.bw
	now := time.Now()
	fc.wd.arm(now, f.writeTimeout)
	// Informational answers (103 Early Hints) pass through first.
	for n := 0; resp.Status < 200; n++ {
		if resp.Status == http.StatusSwitchingProtocols || n == max1xx {
			_ = uc.conn.Close()
			return fc.upstreamFailed(x, method, h1.ErrMalformed, fc.req.ContentLength > 0)
		}
		writeStatusLine(w, resp.Status, resp.Reason)
		for i, fd := range resp.Fields {
			if !resp.IsHop(i) && !h1.EqualFold(fd.Name, "Content-Length") {
				writeField(w, fd.Name, fd.Value)
			}
		}
		_, _ = w.WriteString("\r\n")
		if err := w.Flush(); err != nil {
			_ = uc.conn.Close()
			return false
		}
		if err := readResponse(uc.br, resp); err != nil {
			_ = uc.conn.Close()
			return fc.upstreamFailed(x, method, err, fc.req.ContentLength > 0)
		}
	}
	x.observe(edge.Outcome{Status: resp.Status})
	d := &x.d
	bodyless := resp.Bodyless(method)
	untilClose := !bodyless && !resp.Chunked && resp.ContentLength < 0
	closing := fc.closing()

	writeStatusLine(w, resp.Status, resp.Reason)
	hasDate := false
	for i, fd := range resp.Fields {
		// A Content-Length on a 1xx (above) or a 204 is not framing, and
		// a server MUST NOT send one (RFC 9110 §8.6): a client or front
		// proxy that believed it would take the next answer for a body.
		// net/http's server drops it too.
		if resp.IsHop(i) || decisionSets(d, fd.Name) ||
			resp.Status == http.StatusNoContent && h1.EqualFold(fd.Name, "Content-Length") {
			continue
		}
		hasDate = hasDate || h1.EqualFold(fd.Name, "Date")
		writeField(w, fd.Name, fd.Value)
	}
	writeDecisionHeaders(w, d, x.pl.names)
	if !hasDate {
		_, _ = w.Write(f.dateLine())
	}
	if !bodyless && (resp.Chunked || untilClose) {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if closing {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	_, _ = w.WriteString("\r\n")
	x.rec.status = resp.Status

	// The decision's timeout covered the wait for the head; the body
	// streams under the write timeout.
	if !bodyless && !(resp.ContentLength >= 0 && int64(uc.br.Buffered()) >= resp.ContentLength) {
		uc.rd.arm(now, f.writeTimeout)
	}
	var (
		n          int64
		rerr, werr error
	)
	switch {
	case bodyless:
	case resp.Chunked:
		n, rerr, werr = relayChunked(w, uc.br)
	case untilClose:
		n, rerr, werr = relayUntilClose(w, uc.br)
	default:
		n, rerr, werr = copyN(w, uc.br, resp.ContentLength)
	}
	x.rec.written = n
	if rerr == nil && werr == nil && !resp.Close && !untilClose {
		f.up.put(x.pl.target.host, uc)
	} else {
		_ = uc.conn.Close()
	}
	if rerr != nil {
		// The client has a truncated body: only closing tells it.
		f.s.log.Warn("upstream body failed", "request_id", d.RequestID, "err", rerr.Error())
		return false
	}
	return werr == nil && !closing
}

// decisionSets reports whether the decision sets a response header of this
// name, which then replaces the upstream's.
func decisionSets(d *edge.Decision, name string) bool {
	for _, kv := range d.ResponseHeaders {
		if h1.EqualFold(name, kv[0]) {
			return true
		}
	}
	for _, kv := range d.SecurityHeaders {
		if h1.EqualFold(name, kv[0]) {
			return true
		}
	}
	return false
}

// dateLine is the Date field for answers the sidecar makes, formatted once
// a second.
type dateLine struct {
	unix int64
	line []byte
}

func (f *fastServer) dateLine() []byte {
	now := time.Now()
	if d := f.date.Load(); d != nil && d.unix == now.Unix() {
		return d.line
	}
	b := append([]byte("Date: "), now.UTC().AppendFormat(nil, http.TimeFormat)...)
	d := &dateLine{unix: now.Unix(), line: append(b, '\r', '\n')}
	f.date.Store(d)
	return d.line
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
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
