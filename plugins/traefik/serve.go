package traefik

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/contentguard/contentguard/edge"
)

// Middleware is one contentguard middleware of Traefik's: the engine of its
// policy in front of the next handler (in the end, Traefik's proxy to the
// service).
type Middleware struct {
	next    http.Handler
	name    string
	engine  *edge.Engine
	maxBody int64
	now     func() time.Time
}

// ServeHTTP decides the request and applies the decision: a refusal is
// answered here; an allowed request goes on to the next handler.
func (m *Middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	serve(m, w, r, m.next)
}

// serve is ServeHTTP with the next handler as a parameter (warmUp passes
// its own). Internal steps are functions, not methods: Yaegi v0.16.1 calls
// an interpreted method through a reflect.MakeFunc wrapper built for each
// call, about four times the cost of a function call.
func serve(m *Middleware, w http.ResponseWriter, r *http.Request, next http.Handler) {
	path := requestPath(r)
	d := m.engine.Check(r.Context(), edge.Request{
		Method:        r.Method,
		Host:          r.Host,
		Path:          path,
		RawQuery:      r.URL.RawQuery,
		Header:        r.Header,
		Peer:          peerAddr(r.RemoteAddr),
		TLS:           r.TLS != nil,
		ContentLength: r.ContentLength,
	})
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		// Traefik's net/http server drops a Transfer-Encoding it receives
		// in HTTP/1.0 and reads no body (Go issue 12785): the chunks would
		// be read as the next request of a kept-alive connection, so every
		// HTTP/1.0 connection closes after its answer (RFC 9112 §6.1).
		w.Header().Set("Connection", "close")
	}
	if !d.Allow {
		writeDecision(w, &d)
		return
	}
	x := &exchange{w: w, m: m, d: d}
	d.SetUpstreamHeaders(r.Header)
	if d.Path != path {
		// The service receives the path the policy matched, escaped as
		// the engine normalised it.
		setPath(r, d.Path)
	}
	r = arm(x, r)
	x.headers = len(w.Header())
	next.ServeHTTP(x, r)
	finish(x)
}

// requestPath is the path exactly as the client sent it (the engine
// normalises it itself), without the query.
func requestPath(r *http.Request) string {
	uri := r.RequestURI
	if len(uri) == 0 || uri[0] != '/' {
		// Absolute form ("http://host/p"), "*", or a request built in
		// process: the parsed URL's path.
		return r.URL.EscapedPath()
	}
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		return uri[:i]
	}
	return uri
}

// peerAddr is the connection's remote address (Traefik's client, or a
// proxy in front of it: spec.clientIP says which proxies to trust).
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// setPath makes the request go upstream with the escaped path p.
func setPath(r *http.Request, p string) {
	if unescaped, err := url.PathUnescape(p); err == nil {
		r.URL.Path = unescaped
		r.URL.RawPath = p
	} else {
		r.URL.Path, r.URL.RawPath = p, ""
	}
	r.RequestURI = p
	if r.URL.RawQuery != "" {
		r.RequestURI += "?" + r.URL.RawQuery
	}
}

// writeDecision answers with the engine's refusal (or CORS preflight).
func writeDecision(w http.ResponseWriter, d *edge.Decision) {
	h := w.Header()
	d.SetResponseHeaders(h)
	if d.ContentType != "" && len(d.Body) > 0 {
		h["Content-Type"] = []string{d.ContentType}
		h["Content-Length"] = []string{strconv.Itoa(len(d.Body))}
	}
	w.WriteHeader(d.Status)
	if len(d.Body) > 0 {
		_, _ = w.Write(d.Body)
	}
}

// exchange is one allowed request on its way through the next handler. It
// is the ResponseWriter the next handler writes to: the answer's head gets
// the decision's response headers, its status goes to the circuit breaker,
// and an answer the proxy made up because the service did not answer is
// replaced by the engine's (502, 504, or the client's fault).
//
// Compiled code (Traefik's proxy) sees only the Header, Write and
// WriteHeader methods of an interpreted ResponseWriter: a Flush or Unwrap
// declared here would never reach it. So a streamed answer (no
// Content-Length: SSE, NDJSON) is flushed by Write itself, after each write.
type exchange struct {
	w http.ResponseWriter
	m *Middleware
	d edge.Decision

	headers  int // header fields of w before the next handler ran
	status   int
	observed bool
	replaced bool // the next handler's answer is dropped for the engine's
	stream   bool // flush after every write
	rc       *http.ResponseController
	body     *clientBody
	timer    upstreamTimer
}

func (x *exchange) Header() http.Header { return x.w.Header() }

func (x *exchange) WriteHeader(code int) {
	if x.status != 0 || x.replaced {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		x.w.WriteHeader(code) // 1xx: 100 Continue, 103 Early Hints
		return
	}
	writeHead(x, code)
}

func (x *exchange) Write(b []byte) (int, error) {
	if x.replaced {
		return len(b), nil // the proxy's own text for a failure we answer
	}
	if x.status == 0 {
		writeHead(x, http.StatusOK)
		if x.replaced {
			return len(b), nil
		}
	}
	n, err := x.w.Write(b)
	if x.stream && err == nil {
		err = x.rc.Flush()
	}
	return n, err
}

// writeHead judges the next handler's answer when its head is written.
func writeHead(x *exchange, code int) {
	e := x.m.engine
	fired := x.timer.stop()
	switch o := outcomeOf(x, code, fired); {
	case o.ClientFault:
		x.replaced = true
		observe(x, o)
		if f := e.ClientFailure(x.d, o); f.Status != edge.StatusClientClosed {
			// The rest of the body is unread: this answer is the last.
			x.w.Header().Set("Connection", "close")
			writeDecision(x.w, &f)
		}
	case o.Failed():
		x.replaced = true
		observe(x, o)
		f := e.UpstreamFailure(x.d, o)
		writeDecision(x.w, &f)
	default:
		x.status = code
		observe(x, o)
		h := x.w.Header()
		// The decision's values replace the service's of the same names.
		x.d.SetResponseHeaders(h)
		if h["Content-Length"] == nil && code != http.StatusSwitchingProtocols {
			x.stream = true
			x.rc = http.NewResponseController(x.w)
		}
		x.w.WriteHeader(code)
	}
}

// outcomeOf tells what the status the next handler writes means. Traefik's
// proxy answers 502 (the service could not be reached), 504 (its own
// timeout) or 499 (the client went away) with a head of its own making,
// having copied no field from a service's answer: such a head, with no more
// fields than before the proxy ran, is no answer from the service.
func outcomeOf(x *exchange, code int, fired bool) edge.Outcome {
	if x.body != nil {
		if err := x.body.failure(); err != nil {
			return edge.BodyFault(err)
		}
	}
	if fired {
		return edge.Outcome{Timeout: true}
	}
	if len(x.w.Header()) == x.headers {
		switch code {
		case http.StatusBadGateway:
			return edge.Outcome{Connection: true}
		case http.StatusGatewayTimeout:
			return edge.Outcome{Timeout: true}
		case edge.StatusClientClosed:
			return edge.Outcome{ClientFault: true, Status: edge.StatusClientClosed}
		}
	}
	return edge.Outcome{Status: code}
}

// observe reports the outcome to the engine, once.
func observe(x *exchange, o edge.Outcome) {
	if x.observed {
		return
	}
	x.observed = true
	x.m.engine.Observe(&x.d, o)
}

// finish runs when the next handler has returned: an answer it never
// started is a 200 with no body (as net/http would send it), with the
// decision's headers; a panic that skipped this leaves the breaker's slot
// taken until its request is forgotten, which the engine bounds.
func finish(x *exchange) {
	if x.status == 0 && !x.replaced {
		writeHead(x, http.StatusOK)
	}
	x.timer.stop()
}

// arm prepares an allowed request for the next handler: its body is
// watched (clientBody) and bounded (a chunked body past maxBodyBytes), and
// the service must answer within the decision's timeout, counted from the
// hand-over of the whole request, else the request is cancelled and the
// engine answers 504.
func arm(x *exchange, r *http.Request) *http.Request {
	hasBody := r.Body != nil && r.Body != http.NoBody
	if hasBody {
		if r.ContentLength < 0 && x.m.maxBody > 0 {
			// A chunked body has no declared size for the engine to
			// judge: count it while it streams.
			r.Body = http.MaxBytesReader(x.w, r.Body, x.m.maxBody)
		}
		x.body = &clientBody{ReadCloser: r.Body, x: x}
		r.Body = x.body
		if x.d.BodyTimeout > 0 {
			x.rc = http.NewResponseController(x.w)
			// Where Traefik's writer cannot set a deadline, the upstream
			// timer below still bounds the body.
			_ = x.rc.SetReadDeadline(x.m.now().Add(x.d.BodyTimeout))
		}
	}
	if x.d.Timeout <= 0 {
		return r
	}
	wait := x.d.Timeout
	if hasBody {
		wait += x.d.BodyTimeout
	}
	ctx, cancel := context.WithCancel(r.Context())
	x.timer.start(wait, cancel)
	return r.WithContext(ctx)
}

// clientBody is an allowed request's body as the proxy reads it to send it
// on: it keeps the first read error, which makes the exchange the client's
// fault, and at its end restarts the upstream timer with the upstream's
// timeout alone and lifts the body's read deadline. The proxy reads it on
// its own goroutine, hence the lock.
type clientBody struct {
	io.ReadCloser
	x *exchange

	mu   sync.Mutex
	err  error
	done bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		bodyRead(b, err)
	}
	return n, err
}

func bodyRead(b *clientBody, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done || b.err != nil {
		return
	}
	if err != io.EOF {
		b.err = err
		return
	}
	b.done = true
	if b.x.rc != nil {
		_ = b.x.rc.SetReadDeadline(time.Time{})
	}
	b.x.timer.restart(b.x.d.Timeout)
}

// failure is the body's first read error, or nil.
func (b *clientBody) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// upstreamTimer is the upstream timeout of one request. While the body
// streams it runs for the body's timeout plus the upstream's; when the body
// has been handed over it restarts with the upstream's alone. When it fires
// it cancels the request the proxy is working on.
type upstreamTimer struct {
	mu    sync.Mutex
	t     *time.Timer
	armed bool
	fired bool
}

func (u *upstreamTimer) start(d time.Duration, expire func()) {
	u.mu.Lock()
	u.t = time.AfterFunc(d, expire)
	u.armed = true
	u.mu.Unlock()
}

// restart runs the timer again for d from now, unless it was stopped or
// has fired.
func (u *upstreamTimer) restart(d time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.armed {
		return
	}
	if !u.t.Stop() {
		u.armed, u.fired = false, true
		return
	}
	u.t.Reset(d)
}

// stop stops the timer and reports whether it had fired.
func (u *upstreamTimer) stop() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.armed {
		u.armed = false
		if !u.t.Stop() {
			u.fired = true
		}
	}
	return u.fired
}
