package sidecar

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/telemetry"
)

// errUpstreamTimeout cancels an upstream attempt that outlived
// Decision.Timeout.
var errUpstreamTimeout = errors.New("sidecar: upstream timeout")

// proxy is the public handler: check, then reject, serve locally, or
// forward through httputil.ReverseProxy.
type proxy struct {
	s          *Server
	rp         *httputil.ReverseProxy
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	traced     bool // spans are recorded (an exporting provider)
	accessLog  bool
	alog       *accessLog // encodes the access log itself; nil: through log
	log        *slog.Logger
}

func newProxy(s *Server) *proxy {
	p := &proxy{
		s:          s,
		tracer:     s.tracing.Tracer("github.com/contentguard/contentguard/sidecar"),
		propagator: s.tracing.Propagator,
		traced:     s.tracing.Exporting(),
		accessLog:  !s.opts.DisableAccessLog,
		log:        s.log,
	}
	if s.opts.AccessLog != nil {
		p.alog = newAccessLog(s.opts.AccessLog, s.log)
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      s.opts.Transport,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		BufferPool:     &bufferPool{},
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return p
}

// exchange is one request's state across the ReverseProxy hooks. It is the
// forwarded request's context itself, so every hook finds it with a type
// assertion (or one context lookup) rather than a map of requests.
type exchange struct {
	context.Context // the request's context, cancelled by the upstream timeout

	pl       *plane
	d        edge.Decision
	rec      recorder
	peer     netip.Addr
	trusted  bool // the peer is a trusted proxy: its X-Forwarded-* are kept
	cancel   context.CancelCauseFunc
	timer    upstreamTimer // the net/http path's upstream timeout
	body     *clientBody   // the net/http path's request body, when it has one
	observed bool
	reason   string // the final reason when the upstream failed
	fault    string // whose fault the exchange's end was (edge.Outcome.Fault)
	sent     time.Time
}

type exchangeKey struct{}

// Value finds the exchange itself under exchangeKey, through contexts that
// ReverseProxy and the transport derive from it (client traces).
func (x *exchange) Value(key any) any {
	if _, ok := key.(exchangeKey); ok {
		return x
	}
	return x.Context.Value(key)
}

func exchangeOf(ctx context.Context) *exchange {
	if x, ok := ctx.(*exchange); ok {
		return x
	}
	return ctx.Value(exchangeKey{}).(*exchange)
}

func (x *exchange) expire() {
	x.cancel(errUpstreamTimeout)
}

// observe reports the upstream outcome to the engine, once.
func (x *exchange) observe(o edge.Outcome) {
	if x.observed {
		return
	}
	x.observed = true
	x.fault = o.Fault()
	o.Duration = time.Since(x.sent)
	x.pl.engine.Observe(&x.d, o)
}

// clientFailed reports a client's fault to the engine and returns the
// answer (ClientFailure); for a client that is gone it only records the
// status, and reports false: there is nothing to write.
func (x *exchange) clientFailed(o edge.Outcome) (edge.Decision, bool) {
	x.observe(o)
	f := x.pl.engine.ClientFailure(x.d, o)
	x.reason = f.Reason
	x.rec.status = f.Status
	return f, f.Status != edge.StatusClientClosed
}

// ServeHTTP judges the request with the engine in force and applies the
// decision.
func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	pl := p.s.state.Load()
	// Not pooled: the transport's goroutines may still hold contexts derived
	// from a forwarded exchange after the handler returns.
	x := &exchange{pl: pl}
	x.rec.ResponseWriter = w
	x.peer = peerAddr(r.RemoteAddr)

	req := edge.Request{
		Method:        r.Method,
		Host:          r.Host,
		Path:          requestPath(r),
		RawQuery:      r.URL.RawQuery,
		Header:        r.Header,
		Peer:          x.peer,
		TLS:           r.TLS != nil,
		ContentLength: r.ContentLength,
	}
	// Local handlers do not depend on the upstream: its breaker is neither
	// consulted nor fed.
	local := p.s.isLocal(req.Path)
	req.DecideOnly = local
	ctx := r.Context()
	var span trace.Span
	if p.traced {
		ctx = p.propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
		ctx, span = p.tracer.Start(ctx, "edge", trace.WithSpanKind(trace.SpanKindServer))
	}

	defer func() { p.finish(x, r.Method, ctx, span, start, local) }()
	if p.s.draining.Load() {
		w.Header().Set("Connection", "close") // see drain.go
	}

	x.d = pl.engine.Check(ctx, req)
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		// net/http drops a Transfer-Encoding it receives in HTTP/1.0 and
		// reads no body (Go issue 12785), so the chunks would be read as
		// the next request on a kept-alive connection: RFC 9112 §6.1 has
		// the connection closed after the answer. The field is gone by
		// now, so every HTTP/1.0 connection closes.
		w.Header().Set("Connection", "close")
	}
	if x.d.Allow && r.ContentLength < 0 && pl.maxBody > 0 {
		// A chunked body has no declared size for the engine to judge:
		// count it while it streams; past the limit reads fail and the
		// proxy answers 413.
		r.Body = http.MaxBytesReader(w, r.Body, pl.maxBody)
	}
	if x.d.Allow && !local && r.Body != nil && r.Body != http.NoBody {
		// The body must arrive within the route's body timeout; the
		// upstream's timeout starts when it has (clientBody).
		rc := http.NewResponseController(w)
		if x.d.BodyTimeout > 0 {
			_ = rc.SetReadDeadline(time.Now().Add(x.d.BodyTimeout))
		}
		x.body = &clientBody{ReadCloser: r.Body, x: x, rc: rc}
		r.Body = x.body
	}
	switch {
	case !x.d.Allow:
		writeDecision(&x.rec, &x.d, pl.names)
	case local:
		x.rec.d, x.rec.names = &x.d, pl.names
		p.s.opts.Local.ServeHTTP(&x.rec, r)
	default:
		p.forward(ctx, x, r)
	}
}

// forward sends an allowed request upstream through the ReverseProxy, with
// the decision's timeout on the attempt, from the hand-over of the whole
// request to the response headers (a streamed response body afterwards is
// bounded by the server's write timeout). While a request body streams the
// attempt is bounded by the body's timeout plus the upstream's.
func (p *proxy) forward(ctx context.Context, x *exchange, r *http.Request) {
	x.trusted = trustedPeer(x.pl.trusted, x.peer)
	var cspan trace.Span
	if p.traced {
		ctx, cspan = p.tracer.Start(ctx, "upstream "+telemetry.BoundedMethod(r.Method), trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("server.address", x.pl.target.host)))
	}
	x.Context, x.cancel = context.WithCancelCause(ctx)
	if x.d.Timeout > 0 {
		wait := x.d.Timeout
		if x.body != nil {
			wait += x.d.BodyTimeout
		}
		x.timer.start(wait, x.expire)
	}
	x.sent = time.Now()
	p.rp.ServeHTTP(&x.rec, r.WithContext(x))
	x.timer.stop()
	x.cancel(nil)
	if cspan != nil {
		if x.reason != "" {
			cspan.SetStatus(codes.Error, x.reason)
		}
		cspan.End()
	}
}

// rewrite shapes the forwarded request (ReverseProxy has already removed
// hop-by-hop and client Forwarded/X-Forwarded-* headers from pr.Out).
func (p *proxy) rewrite(pr *httputil.ProxyRequest) {
	x := exchangeOf(pr.Out.Context())
	out := pr.Out
	t := &x.pl.target
	out.URL.Scheme = t.scheme
	out.URL.Host = t.host
	// The normalised path goes on the wire exactly as the engine matched it.
	out.URL.Opaque = t.base + x.d.Path
	out.URL.Path, out.URL.RawPath = "", ""
	out.Host = ""
	x.pl.names.setUpstreamHeaders(out.Header, &x.d)
	setForwarded(out.Header, pr.In, x.peer.IsValid(), x.trusted)
	if p.traced {
		p.propagator.Inject(x, propagation.HeaderCarrier(out.Header))
	}
}

// modifyResponse reports a response to the engine and adds the decision's
// response headers (request ID, rate limits, CORS, security headers).
func (p *proxy) modifyResponse(resp *http.Response) error {
	x := exchangeOf(resp.Request.Context())
	if x.timer.stop() {
		return errUpstreamTimeout // too late: errorHandler answers 504
	}
	x.observe(edge.Outcome{Status: resp.StatusCode})
	// The decision's headers go straight into the client's header map, and
	// the upstream's values of the same names are dropped, so ReverseProxy's
	// copy does not duplicate them: one map grows instead of two.
	x.pl.names.dropResponseHeaders(resp.Header, &x.d)
	x.pl.names.setResponseHeaders(x.rec.Header(), &x.d)
	return nil
}

// errorHandler answers an allowed request that got no upstream response:
// the client's fault when its body failed (408, 413, 400, or nothing for a
// client gone), else the upstream's (504, 502).
func (p *proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeOf(r.Context())
	fired := x.timer.stop() || errors.Is(err, errUpstreamTimeout)
	var tooLarge *http.MaxBytesError
	if berr := x.body.failure(); berr != nil || errors.As(err, &tooLarge) {
		if berr == nil {
			berr = err
		}
		if f, answer := x.clientFailed(edge.BodyFault(berr)); answer {
			// The rest of the body is unread: this answer is the last.
			w.Header().Set("Connection", "close")
			writeDecision(w, &f, x.pl.names)
		}
		return
	}
	switch {
	case fired:
		o := edge.Outcome{Timeout: true}
		x.observe(o)
		f := x.pl.engine.UpstreamFailure(x.d, o)
		x.reason = f.Reason
		writeDecision(w, &f, x.pl.names)
	case context.Cause(x) != nil && !errors.Is(context.Cause(x), errUpstreamTimeout):
		// The client went away; nobody reads an answer.
		x.clientFailed(edge.Outcome{ClientFault: true, Status: edge.StatusClientClosed})
	default:
		o := edge.Outcome{Connection: true}
		x.observe(o)
		f := x.pl.engine.UpstreamFailure(x.d, o)
		x.reason = f.Reason
		p.log.Debug("upstream unreachable", "request_id", x.d.RequestID, "err", err.Error())
		writeDecision(w, &f, x.pl.names)
	}
}

// finish records the request: metrics, the access log line and the server
// span; it guarantees Observe for allowed forwards that ended abnormally
// (a panic in the proxy).
func (p *proxy) finish(x *exchange, method string, ctx context.Context, span trace.Span, start time.Time, local bool) {
	d := &x.d
	if d.Allow && !local && !x.observed {
		// Ended abnormally (a panic in the proxy): the slot is released,
		// not counted against the upstream.
		x.observe(edge.Outcome{ClientFault: true, Status: edge.StatusClientClosed})
		x.reason = edge.ReasonClientClosed
	}
	status := x.rec.Status()
	elapsed := time.Since(start)
	route := routeLabel(d.Route)
	p.s.metrics.http.Record(method, route, status, elapsed)
	reason := d.Reason
	if x.reason != "" {
		reason = x.reason
	}
	if p.accessLog {
		e := accessEntry{
			time:      time.Now(),
			requestID: d.RequestID,
			method:    method,
			path:      d.Path,
			route:     route,
			decision:  decisionLabel(d),
			reason:    reason,
			status:    status,
			latency:   elapsed,
			clientIP:  clientIPString(d.ClientIP),
			subject:   d.Subject,
			bytes:     x.rec.written,
			fault:     x.fault,
		}
		if p.alog != nil {
			e.span = trace.SpanContextFromContext(ctx)
			p.alog.log(ctx, &e)
		} else {
			e.slog(ctx, p.log)
		}
	}
	if span != nil {
		span.SetName(telemetry.BoundedMethod(method) + " " + route)
		span.SetAttributes(
			attribute.String("http.route", route),
			attribute.Int("http.response.status_code", status),
			attribute.String("contentguard.reason", reason),
			attribute.String("contentguard.request_id", d.RequestID),
		)
		if status >= 500 {
			span.SetStatus(codes.Error, reason)
		}
		span.End()
	}
}

func decisionLabel(d *edge.Decision) string {
	switch {
	case d.Allow:
		return "allow"
	case d.Reason == edge.ReasonPreflight:
		return "preflight"
	}
	return "reject"
}

func clientIPString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// writeDecision answers with the engine's rejection (or preflight).
func writeDecision(w http.ResponseWriter, d *edge.Decision, names headerNames) {
	h := w.Header()
	names.setResponseHeaders(h, d)
	if d.ContentType != "" && len(d.Body) > 0 {
		h["Content-Type"] = []string{d.ContentType}
		h["Content-Length"] = []string{strconv.Itoa(len(d.Body))}
	}
	w.WriteHeader(d.Status)
	if len(d.Body) > 0 {
		_, _ = w.Write(d.Body)
	}
}

// requestPath is the path exactly as the client sent it (the engine
// normalises it itself), without the query.
func requestPath(r *http.Request) string {
	uri := r.RequestURI
	if len(uri) == 0 || uri[0] != '/' {
		// Absolute form ("http://host/p") or "*": the parsed URL's path.
		return r.URL.EscapedPath()
	}
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		return uri[:i]
	}
	return uri
}

// peerAddr is the connection's remote address.
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func trustedPeer(trusted []netip.Prefix, peer netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// setForwarded sets X-Forwarded-For/-Proto/-Host on the forwarded request
// (see forwardedValues).
//
// peerValid says RemoteAddr parsed as an address and port (always so for
// TCP); otherwise no address of the peer is forwarded.
func setForwarded(out http.Header, in *http.Request, peerValid, trusted bool) {
	peer := ""
	if peerValid {
		peer, _, _ = net.SplitHostPort(in.RemoteAddr)
	}
	xff, proto, host := forwardedValues(in.Header, in.Host, in.TLS != nil, peer, trusted)
	if xff != "" {
		out["X-Forwarded-For"] = []string{xff}
	}
	out["X-Forwarded-Proto"] = []string{proto}
	if host != "" {
		out["X-Forwarded-Host"] = []string{host}
	}
}

// forwardedValues are the X-Forwarded-For, -Proto and -Host values to send
// upstream for a request with header in (canonical names) and Host host,
// from peer. A trusted proxy's chain is extended with it; anyone else's
// chain is discarded and a fresh one starts at the peer, so a client cannot
// plant addresses the upstream would believe. An empty xff or host is not
// sent.
func forwardedValues(in http.Header, host string, tls bool, peer string, trusted bool) (xff, proto, fhost string) {
	xff = peer
	proto = "http"
	if tls {
		proto = "https"
	}
	fhost = host
	if trusted {
		if prior := in["X-Forwarded-For"]; len(prior) > 0 {
			xff = strings.Join(prior, ", ")
			if peer != "" {
				xff += ", " + peer
			}
		}
		if v := in.Get("X-Forwarded-Proto"); v == "http" || v == "https" {
			proto = v
		}
		if v := in.Get("X-Forwarded-Host"); v != "" {
			fhost = v
		}
	}
	if !printable(fhost) {
		fhost = ""
	}
	return xff, proto, fhost
}

// printable reports whether s has no control bytes (net/http's server has
// validated Host already; this keeps the proxy safe behind other servers).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// recorder remembers the status and size of a response. For local handlers
// it also adds the decision's response headers when the head is written.
type recorder struct {
	http.ResponseWriter
	status  int
	written int64
	d       *edge.Decision
	names   headerNames
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.status = code
		if r.d != nil {
			r.names.setResponseHeaders(r.ResponseWriter.Header(), r.d)
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(b)
	r.written += int64(n)
	return n, err
}

// Flush sends buffered data (streaming responses).
func (r *recorder) Flush() {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection (Hijack for
// upgrades, deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Status is the status sent (200 when nothing was written).
func (r *recorder) Status() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// bufferPool recycles ReverseProxy's copy buffers (32 KiB each, otherwise
// allocated per request). It pools array pointers so Put does not allocate.
type bufferPool struct{ p sync.Pool }

const copyBufferSize = 32 << 10

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return new([copyBufferSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
	}
}
