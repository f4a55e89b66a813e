// Package nethttp is the sidecar's net/http data path: an http.Handler that
// judges every request with the engine in force and rejects it, serves it
// with an in-process handler, or forwards it through
// httputil.ReverseProxy — over the upstream client's round-tripper, never
// a connection of its own. It serves what the fast path hands over
// (chunked bodies, upgrades, HTTP/1.0, large heads, in-process paths) and
// everything when the fast path is off.
//
// A request's path, top to bottom in ServeHTTP: Check → reject, serve
// locally, or forward (rewrite the request, ReverseProxy sends it;
// modifyResponse observes the answer, errorHandler a failure) → answer →
// Finish (metrics, access log, span).
package nethttp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/sidecar/exchange"
)

// Sidecar is what the handler needs of the server it runs in.
type Sidecar interface {
	// Plane returns the policy in force; a request reads it once.
	Plane() *exchange.Plane
	// Local reports whether a request for path (as sent) is for the
	// in-process handler.
	Local(path string) bool
	// Draining reports that the server is draining: every answer says
	// Connection: close.
	Draining() bool
}

// Config configures a Handler.
type Config struct {
	Sidecar   Sidecar
	Local     http.Handler      // serves the paths Sidecar.Local reports
	Transport http.RoundTripper // the upstream client's
	Recorder  *exchange.Recorder
	Logger    *slog.Logger
}

// errUpstreamTimeout cancels an upstream attempt that outlived
// Decision.Timeout.
var errUpstreamTimeout = errors.New("sidecar: upstream timeout")

// Handler is the public handler of the net/http path.
type Handler struct {
	sc    Sidecar
	local http.Handler
	rp    *httputil.ReverseProxy
	rec   *exchange.Recorder
	log   *slog.Logger
}

// New returns the handler for c.
func New(c Config) *Handler {
	h := &Handler{sc: c.Sidecar, local: c.Local, rec: c.Recorder, log: c.Logger}
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      c.Transport,
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.errorHandler,
		BufferPool:     &bufferPool{},
		ErrorLog:       slog.NewLogLogger(c.Logger.Handler(), slog.LevelWarn),
	}
	return h
}

// state is one request's state across the ReverseProxy hooks. It is the
// forwarded request's context itself, so every hook finds it with a type
// assertion (or one context lookup) rather than a map of requests.
type state struct {
	context.Context // the request's context, cancelled by the upstream timeout
	exchange.Exchange

	w      statusWriter
	cancel context.CancelCauseFunc
	timer  upstreamTimer // the upstream timeout
	body   *clientBody   // the request body, when it has one
}

type stateKey struct{}

// Value finds the state itself under stateKey, through contexts that
// ReverseProxy and the transport derive from it (client traces).
func (x *state) Value(key any) any {
	if _, ok := key.(stateKey); ok {
		return x
	}
	return x.Context.Value(key)
}

func stateOf(ctx context.Context) *state {
	if x, ok := ctx.(*state); ok {
		return x
	}
	return ctx.Value(stateKey{}).(*state)
}

func (x *state) expire() {
	x.cancel(errUpstreamTimeout)
}

// ServeHTTP judges the request with the engine in force and applies the
// decision.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	pl := h.sc.Plane()
	// Not pooled: the transport's goroutines may still hold contexts derived
	// from a forwarded exchange after the handler returns.
	x := &state{Exchange: exchange.Exchange{Plane: pl}}
	x.w = statusWriter{ResponseWriter: w, x: &x.Exchange}
	x.Peer = exchange.PeerAddr(r.RemoteAddr)

	req := edge.Request{
		Method:        r.Method,
		Host:          r.Host,
		Path:          requestPath(r),
		RawQuery:      r.URL.RawQuery,
		Header:        r.Header,
		Peer:          x.Peer,
		TLS:           r.TLS != nil,
		ContentLength: r.ContentLength,
	}
	// Local handlers do not depend on the upstream: its breaker is neither
	// consulted nor fed.
	local := h.sc.Local(req.Path)
	req.DecideOnly = local
	ctx := r.Context()
	var span trace.Span
	if h.rec.Traced() {
		ctx, span = h.rec.StartServer(ctx, r.Header)
	}

	defer func() { h.rec.Finish(&x.Exchange, r.Method, ctx, span, start, local) }()
	if h.sc.Draining() {
		w.Header().Set("Connection", "close") // see sidecar/drain.go
	}

	x.Decision = pl.Engine.Check(ctx, req)
	d := &x.Decision
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		// net/http drops a Transfer-Encoding it receives in HTTP/1.0 and
		// reads no body (Go issue 12785), so the chunks would be read as
		// the next request on a kept-alive connection: RFC 9112 §6.1 has
		// the connection closed after the answer. The field is gone by
		// now, so every HTTP/1.0 connection closes.
		w.Header().Set("Connection", "close")
	}
	if d.Allow && r.ContentLength < 0 && pl.MaxBody > 0 {
		// A chunked body has no declared size for the engine to judge:
		// count it while it streams; past the limit reads fail and the
		// proxy answers 413.
		r.Body = http.MaxBytesReader(w, r.Body, pl.MaxBody)
	}
	if d.Allow && !local && r.Body != nil && r.Body != http.NoBody {
		// The body must arrive within the route's body timeout; the
		// upstream's timeout starts when it has (clientBody).
		rc := http.NewResponseController(w)
		if d.BodyTimeout > 0 {
			_ = rc.SetReadDeadline(time.Now().Add(d.BodyTimeout))
		}
		x.body = &clientBody{ReadCloser: r.Body, x: x, rc: rc}
		r.Body = x.body
	}
	switch {
	case !d.Allow:
		writeDecision(&x.w, d, pl.Names)
	case local:
		x.w.d, x.w.names = d, pl.Names
		h.local.ServeHTTP(&x.w, r)
	default:
		h.forward(ctx, x, r)
	}
}

// forward sends an allowed request upstream through the ReverseProxy, with
// the decision's timeout on the attempt, from the hand-over of the whole
// request to the response headers (a streamed response body afterwards is
// bounded by the server's write timeout). While a request body streams the
// attempt is bounded by the body's timeout plus the upstream's.
func (h *Handler) forward(ctx context.Context, x *state, r *http.Request) {
	x.Trusted = exchange.TrustedPeer(x.Plane.Trusted, x.Peer)
	var cspan trace.Span
	if h.rec.Traced() {
		ctx, cspan = h.rec.StartClient(ctx, r.Method, x.Plane.Target.Host)
	}
	x.Context, x.cancel = context.WithCancelCause(ctx)
	if x.Decision.Timeout > 0 {
		wait := x.Decision.Timeout
		if x.body != nil {
			wait += x.Decision.BodyTimeout
		}
		x.timer.start(wait, x.expire)
	}
	x.Sent = time.Now()
	h.rp.ServeHTTP(&x.w, r.WithContext(x))
	x.timer.stop()
	x.cancel(nil)
	if cspan != nil {
		h.rec.EndClient(&x.Exchange, cspan)
	}
}

// rewrite shapes the forwarded request (ReverseProxy has already removed
// hop-by-hop and client Forwarded/X-Forwarded-* headers from pr.Out).
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	x := stateOf(pr.Out.Context())
	out := pr.Out
	t := &x.Plane.Target
	out.URL.Scheme = t.Scheme
	out.URL.Host = t.Host
	// The normalised path goes on the wire exactly as the engine matched it.
	out.URL.Opaque = t.Base + x.Decision.Path
	out.URL.Path, out.URL.RawPath = "", ""
	out.Host = ""
	x.Plane.Names.SetUpstreamHeaders(out.Header, &x.Decision)
	setForwarded(out.Header, pr.In, x.Peer.IsValid(), x.Trusted)
	if h.rec.Traced() {
		h.rec.Inject(x, propagation.HeaderCarrier(out.Header))
	}
}

// modifyResponse reports a response to the engine and adds the decision's
// response headers (request ID, rate limits, CORS, security headers).
func (h *Handler) modifyResponse(resp *http.Response) error {
	x := stateOf(resp.Request.Context())
	if x.timer.stop() {
		return errUpstreamTimeout // too late: errorHandler answers 504
	}
	x.Observe(edge.Outcome{Status: resp.StatusCode})
	// The decision's headers go straight into the client's header map, and
	// the upstream's values of the same names are dropped, so ReverseProxy's
	// copy does not duplicate them: one map grows instead of two.
	x.Plane.Names.DropResponseHeaders(resp.Header, &x.Decision)
	x.Plane.Names.SetResponseHeaders(x.w.Header(), &x.Decision)
	return nil
}

// errorHandler answers an allowed request that got no upstream response:
// the client's fault when its body failed (408, 413, 400, or nothing for a
// client gone), else the upstream's (504, 502).
func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	x := stateOf(r.Context())
	fired := x.timer.stop() || errors.Is(err, errUpstreamTimeout)
	var tooLarge *http.MaxBytesError
	if berr := x.body.failure(); berr != nil || errors.As(err, &tooLarge) {
		if berr == nil {
			berr = err
		}
		if f, answer := x.ClientFailed(edge.BodyFault(berr)); answer {
			// The rest of the body is unread: this answer is the last.
			w.Header().Set("Connection", "close")
			writeDecision(w, &f, x.Plane.Names)
		}
		return
	}
	switch {
	case fired:
		f := x.UpstreamFailed(edge.Outcome{Timeout: true})
		writeDecision(w, &f, x.Plane.Names)
	case context.Cause(x) != nil && !errors.Is(context.Cause(x), errUpstreamTimeout):
		// The client went away; nobody reads an answer.
		x.ClientFailed(edge.Outcome{ClientFault: true, Status: edge.StatusClientClosed})
	default:
		f := x.UpstreamFailed(edge.Outcome{Connection: true})
		h.log.Debug("upstream unreachable", "request_id", x.Decision.RequestID, "err", err.Error())
		writeDecision(w, &f, x.Plane.Names)
	}
}

// writeDecision answers with the engine's rejection (or preflight).
func writeDecision(w http.ResponseWriter, d *edge.Decision, names exchange.HeaderNames) {
	h := w.Header()
	names.SetResponseHeaders(h, d)
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
