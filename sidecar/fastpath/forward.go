package fastpath

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/sidecar/exchange"
	"github.com/contentguard/contentguard/sidecar/internal/h1"
	"github.com/contentguard/contentguard/sidecar/upstream"
)

// forwardTraced is forward inside a client span when spans are exported:
// its context goes upstream in traceparent, as on the net/http path.
func (fc *conn) forwardTraced(x *exchange.Exchange, method string) bool {
	rec := fc.f.rec
	if !rec.Traced() {
		return fc.forward(x, method)
	}
	var cspan trace.Span
	fc.ctx, cspan = rec.StartClient(fc.ctx, method, x.Plane.Target.Host)
	keep := fc.forward(x, method)
	rec.EndClient(x, cspan)
	return keep
}

// forward sends an allowed request upstream and relays the answer. It
// reports whether the client connection stays open.
func (fc *conn) forward(x *exchange.Exchange, method string) bool {
	f, req, d := fc.f, &fc.req, &x.Decision
	t := &x.Plane.Target
	x.Trusted = exchange.TrustedPeer(x.Plane.Trusted, fc.peer)
	x.Sent = time.Now()
	// A pooled connection is used only if checked open and quiet (see
	// upstream.Pool.Get). The upstream may still close it between the check
	// and the write: a body-less idempotent request, which may be sent
	// twice, is then retried once on a new connection.
	retriable := req.ContentLength == 0 && idempotent(method)
	var (
		uc    *upstream.Conn
		reuse bool
		err   error
	)
	for attempt := 0; ; {
		if uc, reuse, err = f.pool.Get(context.Background(), t, attempt > 0, x.Sent, d.Timeout); err != nil {
			// The body is still unread: it must not be taken for the
			// next request.
			return fc.upstreamFailed(x, method, err, req.ContentLength > 0)
		}
		fc.upstream.Store(uc)
		uc.Unlimit()
		// The upstream's timeout runs from the hand-over of the whole
		// request; while the body streams, the upstream must take it
		// within the body's timeout plus its own.
		wait := d.Timeout
		if req.ContentLength > 0 {
			wait += d.BodyTimeout
		}
		uc.WriteDeadline.Arm(x.Sent, wait)
		var clientErr bool
		if clientErr, err = fc.writeUpstream(uc, x, method); err == nil {
			uc.ReadDeadline.Arm(time.Now(), d.Timeout)
			err = h1.ReadResponse(uc.Reader, &fc.resp)
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
		_ = uc.Close()
		if clientErr {
			return fc.clientFailed(x, method, err)
		}
		if reuse && retriable && attempt == 0 && !exchange.IsTimeout(err) {
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
func (fc *conn) earlyAnswer(uc *upstream.Conn, d *edge.Decision) bool {
	uc.ReadDeadline.Arm(time.Now(), d.Timeout)
	return h1.ReadResponse(uc.Reader, &fc.resp) == nil
}

// clientFailed answers a request whose body the client failed to deliver
// (bodyFault): 408, 413 or 400, or nothing to a client that is gone. The
// rest of the body is unread, so the connection closes either way.
func (fc *conn) clientFailed(x *exchange.Exchange, method string, err error) bool {
	if f, answer := x.ClientFailed(edge.BodyFault(err)); answer {
		x.Written = int64(len(f.Body))
		fc.writeDecision(&f, method, true)
		fc.linger = true
	}
	return false
}

// writeUpstream writes the forwarded head and the request body on uc.
// clientErr reports that reading the body from the client failed.
func (fc *conn) writeUpstream(uc *upstream.Conn, x *exchange.Exchange, method string) (clientErr bool, err error) {
	req, d, pl := &fc.req, &x.Decision, x.Plane
	w := uc.Writer
	_, _ = w.WriteString(method)
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(pl.Target.Base)
	_, _ = w.WriteString(d.Path)
	if q := req.RawQuery(); q != "" {
		_ = w.WriteByte('?')
		_, _ = w.WriteString(q)
	}
	_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = w.WriteString(pl.Target.Host)
	_, _ = w.WriteString("\r\n")
	// With spans exported, the client span's context replaces the
	// client's trace headers (propagation.HeaderCarrier.Set, as on the
	// net/http path).
	var injected propagation.HeaderCarrier
	if fc.f.rec.Traced() {
		injected = propagation.HeaderCarrier{}
		fc.f.rec.Inject(fc.ctx, injected)
	}
	te := false
	for _, fd := range req.Fields {
		if injected != nil && carries(injected, fd.Name) {
			continue
		}
		if forwardField(fd.Name, d) {
			h1.WriteField(w, fd.Name, fd.Value)
		} else if !te && h1.EqualFold(fd.Name, "Te") && h1.HasToken(fd.Value, "trailers") {
			// As httputil.ReverseProxy: the client's willingness to
			// accept trailers is end-to-end information, said once
			// however many Te fields said it.
			te = true
			_, _ = w.WriteString("Te: trailers\r\n")
		}
	}
	for _, kv := range d.UpstreamHeaders {
		h1.WriteField(w, pl.Names.Canonical(kv[0]), kv[1])
	}
	for name, values := range injected {
		for _, v := range values {
			h1.WriteField(w, name, v)
		}
	}
	xff, proto, host := exchange.ForwardedValues(fc.header, req.Host, false, fc.peerStr, x.Trusted)
	if xff != "" {
		h1.WriteField(w, "X-Forwarded-For", xff)
	}
	h1.WriteField(w, "X-Forwarded-Proto", proto)
	if host != "" {
		h1.WriteField(w, "X-Forwarded-Host", host)
	}
	_, _ = w.WriteString("\r\n")
	if req.ContentLength > 0 {
		// The body must arrive within the route's body timeout.
		fc.rd.Arm(x.Sent, orReadTimeout(d.BodyTimeout, fc.f.readTimeout))
		if _, rerr, werr := h1.CopyN(w, fc.br, req.ContentLength); rerr != nil || werr != nil {
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
func (fc *conn) upstreamFailed(x *exchange.Exchange, method string, err error, withBody bool) bool {
	o := edge.Outcome{Connection: true}
	if exchange.IsTimeout(err) {
		o = edge.Outcome{Timeout: true}
	} else {
		fc.f.log.Debug("upstream unreachable", "request_id", x.Decision.RequestID, "err", err.Error())
	}
	fd := x.UpstreamFailed(o)
	x.Status = fd.Status
	x.Written = int64(len(fd.Body))
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
func (fc *conn) relay(x *exchange.Exchange, uc *upstream.Conn, method string) bool {
	f, resp, w := fc.f, &fc.resp, fc.bw
	now := time.Now()
	fc.wd.Arm(now, f.writeTimeout)
	// Informational answers (103 Early Hints) pass through first.
	for n := 0; resp.Status < 200; n++ {
		if resp.Status == http.StatusSwitchingProtocols || n == h1.Max1xx {
			_ = uc.Close()
			return fc.upstreamFailed(x, method, h1.ErrMalformed, fc.req.ContentLength > 0)
		}
		h1.WriteStatusLine(w, resp.Status, resp.Reason)
		for i, fd := range resp.Fields {
			if !resp.IsHop(i) && !h1.EqualFold(fd.Name, "Content-Length") {
				h1.WriteField(w, fd.Name, fd.Value)
			}
		}
		_, _ = w.WriteString("\r\n")
		if err := w.Flush(); err != nil {
			_ = uc.Close()
			return false
		}
		if err := h1.ReadResponse(uc.Reader, resp); err != nil {
			_ = uc.Close()
			return fc.upstreamFailed(x, method, err, fc.req.ContentLength > 0)
		}
	}
	x.Observe(edge.Outcome{Status: resp.Status})
	d := &x.Decision
	bodyless := resp.Bodyless(method)
	untilClose := !bodyless && !resp.Chunked && resp.ContentLength < 0
	closing := fc.closing()

	h1.WriteStatusLine(w, resp.Status, resp.Reason)
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
		h1.WriteField(w, fd.Name, fd.Value)
	}
	writeDecisionHeaders(w, d, x.Plane.Names)
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
	x.Status = resp.Status

	// The decision's timeout covered the wait for the head; the body
	// streams under the write timeout.
	if !bodyless && !(resp.ContentLength >= 0 && int64(uc.Reader.Buffered()) >= resp.ContentLength) {
		uc.ReadDeadline.Arm(now, f.writeTimeout)
	}
	var (
		n          int64
		rerr, werr error
	)
	switch {
	case bodyless:
	case resp.Chunked:
		n, rerr, werr = h1.RelayChunked(w, uc.Reader)
	case untilClose:
		n, rerr, werr = h1.RelayUntilClose(w, uc.Reader)
	default:
		n, rerr, werr = h1.CopyN(w, uc.Reader, resp.ContentLength)
	}
	x.Written = n
	if rerr == nil && werr == nil && !resp.Close && !untilClose {
		f.pool.Put(&x.Plane.Target, uc)
	} else {
		_ = uc.Close()
	}
	if rerr != nil {
		// The client has a truncated body: only closing tells it.
		f.log.Warn("upstream body failed", "request_id", d.RequestID, "err", rerr.Error())
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

// orReadTimeout is d, or the server's read timeout when the decision has no
// body timeout (a zero deadline would mean none at all).
func orReadTimeout(d, readTimeout time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return readTimeout
}
