package nethttp

import (
	"net"
	"net/http"
	"sync"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/sidecar/exchange"
)

// statusWriter records the status and size of a response in the exchange.
// For local handlers it also adds the decision's response headers when the
// head is written.
type statusWriter struct {
	http.ResponseWriter
	x     *exchange.Exchange
	d     *edge.Decision
	names exchange.HeaderNames
}

func (r *statusWriter) WriteHeader(code int) {
	if r.x.Status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.x.Status = code
		if r.d != nil {
			r.names.SetResponseHeaders(r.ResponseWriter.Header(), r.d)
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusWriter) Write(b []byte) (int, error) {
	if r.x.Status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(b)
	r.x.Written += int64(n)
	return n, err
}

// Flush sends buffered data (streaming responses).
func (r *statusWriter) Flush() {
	if r.x.Status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection (Hijack for
// upgrades, deadlines).
func (r *statusWriter) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// setForwarded sets X-Forwarded-For/-Proto/-Host on the forwarded request
// (see exchange.ForwardedValues).
//
// peerValid says RemoteAddr parsed as an address and port (always so for
// TCP); otherwise no address of the peer is forwarded.
func setForwarded(out http.Header, in *http.Request, peerValid, trusted bool) {
	peer := ""
	if peerValid {
		peer, _, _ = net.SplitHostPort(in.RemoteAddr)
	}
	xff, proto, host := exchange.ForwardedValues(in.Header, in.Host, in.TLS != nil, peer, trusted)
	if xff != "" {
		out["X-Forwarded-For"] = []string{xff}
	}
	out["X-Forwarded-Proto"] = []string{proto}
	if host != "" {
		out["X-Forwarded-Host"] = []string{host}
	}
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
