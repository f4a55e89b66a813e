// Package authz is contentguard's decision endpoint for NGINX auth_request:
// NGINX asks it about every request (method, raw URI, client address and the
// client's headers, no body), and it answers with the engine's decision in a
// shape NGINX can act on. It never proxies.
//
// Plain auth_request understands only 2xx (allow), 401 and 403 (deny); any
// other status becomes NGINX's own 500. So the endpoint answers:
//
//   - allowed: 200 with X-CG-Status, X-CG-Path (the normalised path the
//     upstream must receive), X-CG-Up-<Name> for each header to set upstream
//     (request IDs, forwarded claims; an empty value strips a client's copy)
//     and X-CG-Resp-<Name> for each header to add to the response
//     (rate-limit, CORS, security, request ID). NGINX copies them with
//     auth_request_set, proxy_set_header and add_header.
//   - anything else the engine answers itself (401, 403, 404, 413, 429, 431,
//     503, 400, and 204 CORS preflights): 401 when the decision is 401, else
//     403, with X-CG-Status (the real status) and X-CG-Key. The full answer
//     (status, headers, problem+json body) is kept for a few seconds under
//     that random key, and NGINX's error_page sends the client through a
//     named location that proxies to RenderPath with X-CG-Key, which replays
//     it exactly, once.
//
// deploy/nginx/ holds the configuration; docs/nginx.md explains it.
//
// Decisions are DecideOnly: NGINX never reports the upstream's outcome, so
// the circuit breaker is neither consulted nor fed on this data plane.
package authz

import (
	"container/list"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/problem"
)

// Paths of the handler.
const (
	DecidePath = "/authz"
	RenderPath = "/authz/render"
)

// Headers NGINX sends to describe the original request, and those the
// handler answers with.
const (
	HeaderHost             = "X-Original-Host" // $host; the subrequest's own Host when absent
	HeaderMethod           = "X-Original-Method"
	HeaderURI              = "X-Original-URI" // $request_uri: raw path and query
	HeaderProto            = "X-Original-Proto"
	HeaderContentLength    = "X-Original-Content-Length"
	HeaderTransferEncoding = "X-Original-Transfer-Encoding"
	HeaderRealIP           = "X-Real-IP"

	HeaderStatus = "X-CG-Status"
	HeaderKey    = "X-CG-Key"
	HeaderPath   = "X-CG-Path"
	HeaderRoute  = "X-CG-Route"
	// HeaderUpgrade and HeaderConnection carry the upgrade the decision
	// allows (websocket), for NGINX to send upstream; absent otherwise.
	HeaderUpgrade    = "X-CG-Upgrade"
	HeaderConnection = "X-CG-Connection"
	PrefixUpstream   = "X-CG-Up-"
	PrefixResponse   = "X-CG-Resp-"
)

// Defaults of Options.
const (
	DefaultMaxPending = 10000
	DefaultTTL        = 10 * time.Second
)

// Options configure a Handler.
type Options struct {
	// Engine returns the engine in force (the sidecar's Server.Engine, so
	// reloads apply at once). Required.
	Engine func() *edge.Engine
	// TrustedPeers are the addresses NGINX connects from: only they may name
	// the client with X-Real-IP and the scheme with X-Original-Proto. Empty:
	// the policy's clientIP.trustedProxies. From any other peer the peer
	// itself is the client.
	TrustedPeers []netip.Prefix
	// MaxPending bounds the rejections kept for rendering; TTL is how long
	// each is kept. Defaults DefaultMaxPending, DefaultTTL.
	MaxPending int
	TTL        time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default discards.
	Logger *slog.Logger
}

// Handler serves DecidePath and RenderPath.
type Handler struct {
	opts    Options
	now     func() time.Time
	log     *slog.Logger
	pending *pending
}

// New returns a handler; it fails without Options.Engine.
func New(opts Options) (*Handler, error) {
	if opts.Engine == nil {
		return nil, errors.New("authz: Options.Engine is required")
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	h := &Handler{opts: opts, now: opts.Now, log: opts.Logger}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.pending = newPending(opts.MaxPending, opts.TTL)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case DecidePath:
		h.decide(w, r)
	case RenderPath:
		h.render(w, r)
	default:
		http.NotFound(w, r)
	}
}

// Pending reports how many rejections wait to be rendered.
func (h *Handler) Pending() int { return h.pending.len() }

func (h *Handler) decide(w http.ResponseWriter, r *http.Request) {
	e := h.opts.Engine()
	if e == nil {
		h.fail(w, http.StatusServiceUnavailable, "no policy is loaded")
		return
	}
	req, ok := h.request(r, e)
	if !ok {
		h.fail(w, http.StatusBadRequest, "the auth_request subrequest lacks "+HeaderMethod+" or a valid "+HeaderURI)
		return
	}
	d := e.Check(r.Context(), req)
	out := w.Header()
	out.Set(HeaderStatus, strconv.Itoa(d.Status))
	if d.Route != "" {
		out.Set(HeaderRoute, d.Route)
	}
	if d.Allow {
		out.Set(HeaderStatus, "200")
		out.Set(HeaderPath, d.Path)
		if d.Upgrade != "" {
			out.Set(HeaderUpgrade, d.Upgrade)
			out.Set(HeaderConnection, "upgrade")
		}
		for _, name := range d.StripHeaders {
			out.Set(PrefixUpstream+name, "")
		}
		for _, kv := range d.UpstreamHeaders {
			out.Set(PrefixUpstream+kv[0], kv[1])
		}
		resp := http.Header{}
		d.SetResponseHeaders(resp)
		for name, values := range resp {
			out[http.CanonicalHeaderKey(PrefixResponse+name)] = values
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	key, err := newKey()
	if err != nil {
		h.fail(w, http.StatusInternalServerError, "no randomness for a decision key")
		return
	}
	h.pending.put(key, rejection{status: d.Status, body: d.Body, contentType: d.ContentType, header: responseHeader(d)}, h.now())
	out.Set(HeaderKey, key)
	status := http.StatusForbidden
	if d.Status == http.StatusUnauthorized {
		// No WWW-Authenticate here: NGINX would copy it, and the rendered
		// answer carries the engine's own.
		status = http.StatusUnauthorized
	}
	w.WriteHeader(status)
}

// render replays a stored rejection once.
func (h *Handler) render(w http.ResponseWriter, r *http.Request) {
	rej, ok := h.pending.take(r.Header.Get(HeaderKey), h.now())
	if !ok {
		// Expired or replayed key: fail closed, never allow.
		writeProblem(w, http.StatusForbidden, "decision-unavailable", "Forbidden", "the edge decision for this request is no longer available", "")
		return
	}
	out := w.Header()
	for name, values := range rej.header {
		out[name] = values
	}
	if rej.contentType != "" && len(rej.body) > 0 {
		out.Set("Content-Type", rej.contentType)
	}
	out.Set("Content-Length", strconv.Itoa(len(rej.body)))
	w.WriteHeader(rej.status)
	_, _ = w.Write(rej.body)
}

func responseHeader(d edge.Decision) http.Header {
	h := http.Header{}
	d.SetResponseHeaders(h)
	return h
}

// request builds the engine's view of the original request.
func (h *Handler) request(r *http.Request, e *edge.Engine) (edge.Request, bool) {
	method := r.Header.Get(HeaderMethod)
	uri := r.Header.Get(HeaderURI)
	if method == "" || uri == "" {
		return edge.Request{}, false
	}
	path, query := splitURI(uri)
	if path == "" {
		return edge.Request{}, false
	}
	peer := peerAddr(r.RemoteAddr)
	trusted := h.trusted(peer, e)
	header := r.Header.Clone()
	for _, name := range []string{HeaderHost, HeaderMethod, HeaderURI, HeaderProto, HeaderContentLength, HeaderTransferEncoding, HeaderKey, "Connection", "Content-Length"} {
		header.Del(name)
	}
	host := r.Host
	if h, ok := r.Header[http.CanonicalHeaderKey(HeaderHost)]; ok {
		host = h[0]
	}
	req := edge.Request{
		Method:        method,
		Host:          host,
		Path:          path,
		RawQuery:      query,
		Header:        header,
		Peer:          peer,
		ContentLength: contentLength(r.Header.Get(HeaderContentLength), r.Header.Get(HeaderTransferEncoding)),
		DecideOnly:    true,
	}
	if trusted {
		if ip, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get(HeaderRealIP))); err == nil {
			req.Peer = ip.Unmap()
			// X-Real-IP is NGINX's statement, not the client's header.
			header.Del(HeaderRealIP)
		}
		req.TLS = strings.EqualFold(r.Header.Get(HeaderProto), "https")
	}
	return req, true
}

func (h *Handler) trusted(peer netip.Addr, e *edge.Engine) bool {
	prefixes := h.opts.TrustedPeers
	if len(prefixes) == 0 {
		prefixes = e.Policy().Spec.ClientIP.TrustedProxies
	}
	for _, p := range prefixes {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// splitURI splits $request_uri into the escaped path and the query; an
// absolute-form target (http://host/path) loses its scheme and authority.
func splitURI(uri string) (string, string) {
	if i := strings.Index(uri, "://"); i > 0 && !strings.HasPrefix(uri, "/") {
		rest := uri[i+3:]
		j := strings.IndexAny(rest, "/?")
		if j < 0 {
			return "/", ""
		}
		uri = rest[j:]
		if uri[0] == '?' {
			uri = "/" + uri
		}
	}
	if !strings.HasPrefix(uri, "/") && uri != "*" {
		return "", ""
	}
	path, query, _ := strings.Cut(uri, "?")
	return path, query
}

// contentLength is the declared body size: -1 for a chunked body, 0 when
// none is declared.
func contentLength(cl, te string) int64 {
	if te != "" && !strings.EqualFold(strings.TrimSpace(te), "identity") {
		return -1
	}
	if cl == "" {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}

// fail answers a request the handler itself cannot judge: deny, with the
// problem kept for rendering like any rejection.
func (h *Handler) fail(w http.ResponseWriter, status int, detail string) {
	h.log.Warn("authz: cannot decide", "status", status, "detail", detail)
	p := problem.New(status, "authz-error", http.StatusText(status), detail)
	rej := rejection{status: status, body: p.JSON(), contentType: problem.ContentType, header: http.Header{}}
	if key, err := newKey(); err == nil {
		h.pending.put(key, rej, h.now())
		w.Header().Set(HeaderKey, key)
	}
	w.Header().Set(HeaderStatus, strconv.Itoa(status))
	w.WriteHeader(http.StatusForbidden)
}

func writeProblem(w http.ResponseWriter, status int, typ, title, detail, rid string) {
	p := problem.New(status, typ, title, detail)
	p.RequestID = rid
	w.Header().Set("Content-Type", problem.ContentType)
	w.WriteHeader(status)
	_, _ = w.Write(p.JSON())
}

func newKey() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// rejection is a decision NGINX will ask to render.
type rejection struct {
	status      int
	header      http.Header
	body        []byte
	contentType string
}

// pending is a bounded map of rejections with a time to live; the oldest
// go first when it is full.
type pending struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	byKey map[string]*list.Element
	order *list.List
}

type pendingEntry struct {
	key     string
	expires time.Time
	rej     rejection
}

func newPending(max int, ttl time.Duration) *pending {
	return &pending{max: max, ttl: ttl, byKey: map[string]*list.Element{}, order: list.New()}
}

func (p *pending) put(key string, rej rejection, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for e := p.order.Front(); e != nil; e = p.order.Front() {
		if now.Before(e.Value.(*pendingEntry).expires) && len(p.byKey) < p.max {
			break
		}
		p.order.Remove(e)
		delete(p.byKey, e.Value.(*pendingEntry).key)
	}
	p.byKey[key] = p.order.PushBack(&pendingEntry{key: key, expires: now.Add(p.ttl), rej: rej})
}

func (p *pending) take(key string, now time.Time) (rejection, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.byKey[key]
	if !ok {
		return rejection{}, false
	}
	p.order.Remove(e)
	delete(p.byKey, key)
	pe := e.Value.(*pendingEntry)
	if !now.Before(pe.expires) {
		return rejection{}, false
	}
	return pe.rej, true
}

func (p *pending) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byKey)
}
