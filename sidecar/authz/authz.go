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
//     403, with X-CG-Status (the real status) and X-CG-Key. The key is the
//     full answer (status, headers, problem+json body) sealed with
//     Options.Secret for a few seconds (see seal.go), and NGINX's error_page
//     sends the client through a named location that proxies to RenderPath
//     with X-CG-Key: whichever instance NGINX asks renders it exactly, and
//     each instance at most once.
//
// deploy/nginx/ holds the configuration; docs/nginx.md explains it.
//
// Decisions are DecideOnly: NGINX never reports the upstream's outcome, so
// the circuit breaker is neither consulted nor fed on this data plane.
package authz

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
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
	// MaxPending bounds the rejection keys an instance remembers (issued,
	// or rendered: each renders once); TTL is how long a key is good.
	// Defaults DefaultMaxPending, DefaultTTL.
	MaxPending int
	TTL        time.Duration
	// Secret authenticates the rejection keys (HMAC-SHA256, at least 32
	// bytes). Every authz instance behind one NGINX must have the same one,
	// so that any of them renders a rejection another decided. Default: a
	// random secret of this process (one instance only).
	Secret []byte
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
	keys    sealer
	pending *ledger
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
	switch {
	case len(opts.Secret) == 0:
		secret, err := newSecret()
		if err != nil {
			return nil, fmt.Errorf("authz: no randomness for a secret: %w", err)
		}
		h.keys.secret = secret
	case len(opts.Secret) < minSecret:
		return nil, fmt.Errorf("authz: Options.Secret of %d bytes, want at least %d", len(opts.Secret), minSecret)
	default:
		h.keys.secret = append([]byte(nil), opts.Secret...)
	}
	h.pending = newLedger(opts.MaxPending)
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

// Pending reports how many rejections this instance decided that have not
// been rendered here (they may have been by another instance) and have not
// expired or been forgotten.
func (h *Handler) Pending() int { return h.pending.issuedCount(h.now()) }

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
	key, err := h.issue(rejection{status: d.Status, body: d.Body, contentType: d.ContentType, header: responseHeader(d)})
	if err != nil {
		h.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	out.Set(HeaderKey, key)
	status := http.StatusForbidden
	if d.Status == http.StatusUnauthorized {
		// No WWW-Authenticate here: NGINX would copy it, and the rendered
		// answer carries the engine's own.
		status = http.StatusUnauthorized
	}
	w.WriteHeader(status)
}

// issue seals a rejection into its key and remembers the key's nonce.
func (h *Handler) issue(rej rejection) (string, error) {
	now := h.now()
	key, nonce, err := h.keys.seal(rej, now.Add(h.opts.TTL))
	if err != nil {
		return "", err
	}
	h.pending.issue(nonce, now.Add(h.opts.TTL), now)
	return key, nil
}

// render replays the rejection sealed in the key, once per instance.
func (h *Handler) render(w http.ResponseWriter, r *http.Request) {
	now := h.now()
	rej, nonce, err := h.keys.open(r.Header.Get(HeaderKey), now)
	if err != nil || !h.pending.render(nonce, now.Add(h.opts.TTL), now) {
		// Forged, expired or replayed key: fail closed, never allow.
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
		ContentLength: edge.DeclaredLength(r.Header.Get(HeaderContentLength), r.Header.Get(HeaderTransferEncoding)),
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
	if key, err := h.issue(rej); err == nil {
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

// rejection is a decision NGINX will ask to render.
type rejection struct {
	status      int
	header      http.Header
	body        []byte
	contentType string
}
