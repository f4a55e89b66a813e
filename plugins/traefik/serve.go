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
	after   func(time.Duration, func()) *time.Timer // time.AfterFunc, or WithClock's
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
	// The path exactly as the client sent it (the engine normalises it
	// itself), without the query; a request in absolute form ("GET
	// http://host/p") or built in process has only its parsed URL.
	path := r.RequestURI
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if len(path) == 0 || path[0] != '/' {
		path = r.URL.EscapedPath()
	}
	// The connection's other end: the client, or a proxy in front of
	// Traefik (spec.clientIP says which to trust). The engine unmaps it.
	var peer netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		peer = ap.Addr()
	}
	d := (*edge.Engine).Check(m.engine, r.Context(), edge.Request{
		Method:        r.Method,
		Host:          r.Host,
		Path:          path,
		RawQuery:      r.URL.RawQuery,
		Header:        r.Header,
		Peer:          peer,
		TLS:           r.TLS != nil,
		ContentLength: r.ContentLength,
	})
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		http10(w)
	}
	if !d.Allow {
		writeDecision(w, &d)
		return
	}
	x := &exchange{w: w, m: m, d: d}
	(*edge.Decision).SetUpstreamHeaders(&x.d, r.Header)
	if d.Path != path {
		setPath(r, d.Path)
	}
	if d.Timeout > 0 || r.Body != nil && r.Body != http.NoBody {
		r = arm(x, r)
	}
	x.headers = len(w.Header())
	next.ServeHTTP(x, r)
	if x.status == 0 && !x.replaced {
		// An answer never started is a 200 with no body, as net/http
		// would send it, with the decision's headers.
		writeHead(x, http.StatusOK)
	}
	if x.timer != nil {
		stopTimer(x)
	}
}

// http10 closes an HTTP/1.0 connection after its answer. Traefik's
// net/http server drops a Transfer-Encoding it receives in HTTP/1.0 and
// reads no body (Go issue 12785): the chunks would be read as the next
// request of a kept-alive connection (RFC 9112 §6.1).
func http10(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
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
	(*edge.Decision).SetResponseHeaders(d, h)
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

	// The upstream timeout: timer cancels the request the proxy works on.
	// A request with a body shares it with the proxy's goroutine, which
	// reads the body (body, mu); one without touches it only here.
	timer *time.Timer
	fired bool
	body  *clientBody
	mu    sync.Mutex
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
	if x.status == 0 && !x.replaced {
		writeHead(x, http.StatusOK)
	}
	if x.replaced {
		return len(b), nil // the proxy's own text for a failure we answer
	}
	n, err := x.w.Write(b)
	if x.stream && err == nil {
		err = x.rc.Flush()
	}
	return n, err
}

// writeHead judges the next handler's answer when its head is written.
func writeHead(x *exchange, code int) {
	fired := x.timer != nil && stopTimer(x)
	h := x.w.Header()
	o := edge.Outcome{Status: code}
	if fired || x.body != nil || len(h) == x.headers {
		o = outcomeOf(x, code, fired)
	}
	if o.ClientFault || o.Failed() {
		replace(x, o)
		return
	}
	x.status = code
	x.observed = true
	(*edge.Engine).Observe(x.m.engine, &x.d, o)
	// The decision's values replace the service's of the same names.
	(*edge.Decision).SetResponseHeaders(&x.d, h)
	if h["Content-Length"] == nil && code != http.StatusSwitchingProtocols {
		x.stream = true
		x.rc = http.NewResponseController(x.w)
	}
	x.w.WriteHeader(code)
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
	if fired && x.body != nil && lateBody(x.body) {
		// Time ran out while the proxy waited for the client's body: the
		// client is late, not the service (408, not counted).
		return edge.Outcome{ClientFault: true, Timeout: true}
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

// replace answers for a service that gave none, or a client that failed
// the exchange: the engine's answer instead of the proxy's.
func replace(x *exchange, o edge.Outcome) {
	x.replaced = true
	x.observed = true
	e := x.m.engine
	e.Observe(&x.d, o)
	if o.ClientFault {
		if f := e.ClientFailure(x.d, o); f.Status != edge.StatusClientClosed {
			// The rest of the body is unread: this answer is the last.
			x.w.Header().Set("Connection", "close")
			writeDecision(x.w, &f)
		}
		return
	}
	f := e.UpstreamFailure(x.d, o)
	writeDecision(x.w, &f)
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
			_ = x.rc.SetReadDeadline(time.Now().Add(x.d.BodyTimeout))
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
	if hasBody {
		x.timer = x.m.after(wait, bodyTimer(x.body, cancel))
	} else {
		// The timer calls the compiled cancel function itself: no
		// interpreted code runs when it fires.
		x.timer = x.m.after(wait, cancel)
	}
	return r.WithContext(ctx)
}

// bodyTimer is what the upstream timer of a request with a body does: it
// notes whether the proxy is waiting for the client's body (then the time
// ran out on the client), and cancels. The body may have no read deadline
// (a writer that cannot set one), and the proxy's attempt ends only when
// the client's next byte, or its going, ends that read, after the outcome
// is no longer the service's. (A function of its own: a request without a
// body allocates none of its slots.)
func bodyTimer(b *clientBody, cancel context.CancelFunc) func() {
	return func() {
		timeUp(b)
		cancel()
	}
}

// timeUp notes, as the upstream timer fires, whether the proxy is waiting
// for the client's body (a Read in progress).
func timeUp(b *clientBody) {
	b.mu.Lock()
	b.late = b.reading
	b.mu.Unlock()
}

// lateBody reports whether the upstream timer fired while the proxy waited
// for the client's body.
func lateBody(b *clientBody) bool {
	b.mu.Lock()
	late := b.late
	b.mu.Unlock()
	return late
}

// stopTimer stops the upstream timer and reports whether it had fired.
func stopTimer(x *exchange) bool {
	if x.body != nil {
		x.mu.Lock()
	}
	if x.timer != nil {
		x.fired = !x.timer.Stop()
		x.timer = nil
	}
	fired := x.fired
	if x.body != nil {
		x.mu.Unlock()
	}
	return fired
}

// clientBody is an allowed request's body as the proxy reads it to send it
// on: it keeps the first read error, which makes the exchange the client's
// fault, and at its end restarts the upstream timer with the upstream's
// timeout alone and lifts the body's read deadline. The proxy reads it on
// its own goroutine, hence the lock.
type clientBody struct {
	io.ReadCloser
	x *exchange

	mu      sync.Mutex
	err     error
	done    bool
	reading bool // a Read waits for the client
	late    bool // the upstream timer fired during a Read
}

func (b *clientBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	b.reading = true
	b.mu.Unlock()
	n, err := b.ReadCloser.Read(p)
	b.mu.Lock()
	b.reading = false
	b.mu.Unlock()
	if err != nil {
		bodyRead(b, err)
	}
	return n, err
}

func bodyRead(b *clientBody, err error) {
	b.mu.Lock()
	first := !b.done && b.err == nil
	if first && err != io.EOF {
		b.err = err
	}
	if first && err == io.EOF {
		b.done = true
	}
	b.mu.Unlock()
	if !first || err != io.EOF {
		return
	}
	x := b.x
	if x.rc != nil {
		_ = x.rc.SetReadDeadline(time.Time{})
	}
	// Handed over: the upstream's own timeout starts now.
	x.mu.Lock()
	if x.timer != nil {
		if x.timer.Stop() {
			x.timer.Reset(x.d.Timeout)
		} else {
			x.fired = true
			x.timer = nil
		}
	}
	x.mu.Unlock()
}

// failure is the body's first read error, or nil.
func (b *clientBody) failure() error {
	b.mu.Lock()
	err := b.err
	b.mu.Unlock()
	return err
}
