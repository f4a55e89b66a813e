package kong

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"

	"github.com/Kong/go-pdk"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/problem"
	"github.com/contentguard/contentguard/edge/requestid"
	"github.com/contentguard/contentguard/telemetry/edgemetrics"
)

// MaxHeaders is the most header fields kong.request.get_headers returns
// (Kong refuses to be asked for more). Access asks for that many and
// refuses a request that has them all: it may have more, and a field past
// the cap would escape every check and the stripping of claim headers.
const MaxHeaders = 1000

// sharedKey is the kong.ctx.shared key under which Access leaves Log the
// key of its pending decision.
const sharedKey = "contentguard"

// Access decides a request. It reads what every decision needs in three PDK
// calls (all headers in one, the method, the path with the query); the
// client's address (kong.client.get_ip) and the scheme
// (kong.request.get_scheme) only when the engine asks for them (see
// connection). It then either answers with the engine's problem in one
// kong.response.exit, or forwards: the upstream headers in one
// kong.service.request.set_headers (plus a clear_header for each client
// header that must not pass, and set_path when the path needed
// normalising), the response headers in one kong.response.set_headers,
// which Kong applies to the upstream's answer, and the key of the pending
// decision in kong.ctx.shared for Log.
func (c *Config) Access(kong *pdk.PDK) {
	defer c.recoverAccess(kong)
	b, err := c.bind()
	if err != nil {
		c.refuse(kong, "the plugin instance could not start", err)
		return
	}
	n := c.node
	start := n.now()
	in, err := readRequest(kong)
	if err != nil {
		c.refuse(kong, "Kong did not answer the plugin", err)
		return
	}
	in.req.Upstream = b.upstream
	conn := &connection{kong: kong}
	in.req.Conn = conn
	eng := b.src.engine()
	d := eng.Check(context.Background(), in.req)
	if conn.err != nil {
		// The engine decided without the address or scheme it asked for.
		if d.Allow {
			eng.Observe(&d, edge.Outcome{Unknown: true})
		}
		c.refuse(kong, "Kong did not answer the plugin", conn.err)
		return
	}
	if !d.Allow {
		exit(kong, &d)
		n.metrics.HTTP().Record(in.req.Method, edgemetrics.RouteLabel(d.Route), d.Status, n.now().Sub(start))
		return
	}
	key, displaced := n.inflight.put(&pending{engine: eng, d: trimmed(d), method: in.req.Method, start: start})
	if displaced != nil {
		// Its Log never came: release its breaker slot, count nothing.
		displaced.engine.Observe(&displaced.d, edge.Outcome{Unknown: true})
	}
	err = forward(kong, &d, &in, key)
	if err != nil {
		if p, ok := n.inflight.take(key); ok {
			p.engine.Observe(&p.d, edge.Outcome{Unknown: true})
		}
		c.refuse(kong, "Kong did not take the decision", err)
	}
}

// connection answers the engine's questions about the client's connection
// (edge.Conn) with a PDK call each, made only when asked: the address when
// the decision depends on the client's address (an ip-keyed limit, or a
// key that falls back to it), the scheme when the policy's answers differ
// over TLS (the strict preset's Strict-Transport-Security). A failed call
// is kept in err, and Access refuses the request.
type connection struct {
	kong *pdk.PDK
	err  error
}

// Peer is kong.client.get_ip: NGINX's $realip_remote_addr, the TCP peer,
// whatever Kong's trusted_ips and real_ip_header say (the policy's
// trustedProxies decide who the client is).
func (c *connection) Peer() netip.Addr {
	ip, err := c.kong.Client.GetIp()
	if err != nil {
		c.err = fmt.Errorf("kong.client.get_ip: %w", err)
		return netip.Addr{}
	}
	peer, _ := netip.ParseAddr(ip) // not an IP (a unix socket): no address
	return peer
}

// TLS is kong.request.get_scheme: whether the connection to Kong is TLS.
func (c *connection) TLS() bool {
	scheme, err := c.kong.Request.GetScheme()
	if err != nil {
		c.err = fmt.Errorf("kong.request.get_scheme: %w", err)
		return false
	}
	return scheme == "https"
}

// incoming is a request as Access read it.
type incoming struct {
	req     edge.Request
	rawPath string
	names   []string // header names as Kong gave them (lower case)
	header  map[string][]string
}

func readRequest(kong *pdk.PDK) (incoming, error) {
	var in incoming
	raw, err := kong.Request.GetHeaders(MaxHeaders)
	if err != nil {
		return in, fmt.Errorf("kong.request.get_headers: %w", err)
	}
	method, err := kong.Request.GetMethod()
	if err != nil {
		return in, fmt.Errorf("kong.request.get_method: %w", err)
	}
	target, err := kong.Request.GetPathWithQuery()
	if err != nil {
		return in, fmt.Errorf("kong.request.get_path_with_query: %w", err)
	}
	path, query, _ := strings.Cut(target, "?")
	h := make(http.Header, len(raw))
	in.names = make([]string, 0, len(raw))
	fields := 0
	for name, values := range raw {
		in.names = append(in.names, name)
		fields += len(values)
		key := http.CanonicalHeaderKey(name)
		h[key] = append(h[key], values...)
	}
	in.header = raw
	in.rawPath = path
	in.req = edge.Request{
		Method:           method,
		Host:             first(h, "Host"),
		Path:             path,
		RawQuery:         query,
		Header:           h,
		ContentLength:    contentLength(h),
		HeadersTruncated: fields >= MaxHeaders,
	}
	return in, nil
}

// contentLength is the declared body size: -1 for a chunked body or a
// length NGINX would not have let through.
func contentLength(h http.Header) int64 {
	if len(h["Transfer-Encoding"]) > 0 {
		return -1
	}
	v := h["Content-Length"]
	if len(v) == 0 {
		return 0
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

func first(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// forward applies an allowed decision to Kong's request and response.
func forward(kong *pdk.PDK, d *edge.Decision, in *incoming, key string) error {
	set := make(map[string][]string, len(d.UpstreamHeaders))
	for _, hv := range d.UpstreamHeaders {
		// A header the client already sent with exactly this value (a
		// kept request ID) needs no call.
		if v := in.header[strings.ToLower(hv[0])]; len(v) == 1 && v[0] == hv[1] {
			continue
		}
		set[hv[0]] = []string{hv[1]}
	}
	for _, name := range in.names {
		if !d.Strips(name) || setsExactly(d, name) {
			continue // setting a name replaces every value under it
		}
		// A client's copy of a claim or request-ID header, under any
		// spelling: rare (a forgery), so one call each is fine.
		if err := kong.ServiceRequest.ClearHeader(name); err != nil {
			return fmt.Errorf("kong.service.request.clear_header: %w", err)
		}
	}
	if len(set) > 0 {
		if err := kong.ServiceRequest.SetHeaders(set); err != nil {
			return fmt.Errorf("kong.service.request.set_headers: %w", err)
		}
	}
	if d.Path != in.rawPath {
		// The upstream receives the path the policy matched.
		if err := kong.ServiceRequest.SetPath(d.Path); err != nil {
			return fmt.Errorf("kong.service.request.set_path: %w", err)
		}
	}
	h := make(http.Header, len(d.ResponseHeaders)+len(d.SecurityHeaders))
	d.SetResponseHeaders(h)
	if err := kong.Response.SetHeaders(h); err != nil {
		return fmt.Errorf("kong.response.set_headers: %w", err)
	}
	if err := kong.Ctx.SetShared(sharedKey, key); err != nil {
		return fmt.Errorf("kong.ctx.shared.set: %w", err)
	}
	return nil
}

// setsExactly reports whether the decision sets a header called name
// (ASCII case aside; '_' and '-' differ, as they do for NGINX).
func setsExactly(d *edge.Decision, name string) bool {
	for _, hv := range d.UpstreamHeaders {
		if strings.EqualFold(hv[0], name) {
			return true
		}
	}
	return false
}

// exit answers with a decision the engine made at the edge.
func exit(kong *pdk.PDK, d *edge.Decision) {
	h := make(http.Header, len(d.ResponseHeaders)+len(d.SecurityHeaders)+1)
	d.SetResponseHeaders(h)
	if len(d.Body) > 0 && d.ContentType != "" {
		h.Set("Content-Type", d.ContentType)
	}
	kong.Response.Exit(d.Status, d.Body, h)
}

// trimmed is the part of an allowed decision Log needs: the breaker's
// ticket and what the metrics label; the headers and body are dropped.
func trimmed(d edge.Decision) edge.Decision {
	d.ResponseHeaders, d.UpstreamHeaders, d.SecurityHeaders, d.StripHeaders = nil, nil, nil, nil
	d.Body, d.Trace = nil, nil
	return d
}

// refuse fails closed when the plugin cannot decide: a 500 problem with a
// fresh request ID, and the reason in the log.
func (c *Config) refuse(kong *pdk.PDK, what string, err error) {
	id := requestid.NewV7()
	c.logger().Error(what+"; refusing the request", "err", err.Error(), "request_id", id)
	p := problem.New(http.StatusInternalServerError, "internal", "Internal Server Error",
		"the edge could not decide on this request; see the gateway's log")
	p.RequestID = id
	p.Reason = "internal"
	kong.Response.Exit(http.StatusInternalServerError, p.JSON(), http.Header{
		"Content-Type": {problem.ContentType},
		"X-Request-Id": {id},
	})
}

// recoverAccess keeps a bug from taking the plugin server, and every
// request in flight on it, down: go-pdk does not recover handler panics.
// The request is refused.
func (c *Config) recoverAccess(kong *pdk.PDK) {
	r := recover()
	if r == nil {
		return
	}
	stack := make([]byte, 16<<10)
	stack = stack[:runtime.Stack(stack, false)]
	c.logger().Error("panic in the access phase", "panic", fmt.Sprint(r), "stack", string(stack))
	defer func() {
		if r := recover(); r != nil { // Kong's socket is gone: Kong answers 500 itself
			c.logger().Error("cannot refuse the request after a panic", "panic", fmt.Sprint(r))
		}
	}()
	c.refuse(kong, "the access phase panicked", fmt.Errorf("panic: %v", r))
}
