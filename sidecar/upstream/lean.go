package upstream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"time"

	"github.com/contentguard/contentguard/sidecar/internal/h1"
)

// leanTransport is an HTTP/1.1 round-tripper for the proxy's hot path:
// body-less GET and HEAD requests to a plain-http upstream. It writes the
// request and reads the response on the calling goroutine over a pooled
// keep-alive connection, where http.Transport hands each request to two
// per-connection goroutines and back through channels — on a busy two-core
// proxy those hand-offs cost more than the work. Everything else (bodies,
// other methods, upgrades, TLS) goes to the full http.Transport, which also
// handles what this one does not try to (1xx responses, HTTP/2, proxies).
//
// Only idempotent, body-less requests take this path, so a pooled
// connection that the upstream closed while idle can be retried once on a
// fresh one without any risk of doing something twice.
type leanTransport struct {
	full      http.RoundTripper
	pool      *Pool
	maxHeader int64
}

// newLeanTransport wraps full, the transport for everything the lean path
// does not take, around a pool of its own.
func newLeanTransport(full http.RoundTripper) *leanTransport {
	return newLeanTransportOn(full, NewPool(nil))
}

// newLeanTransportOn is newLeanTransport over pool, which the fast path
// shares.
func newLeanTransportOn(full http.RoundTripper, pool *Pool) *leanTransport {
	return &leanTransport{full: full, pool: pool, maxHeader: pool.maxHeader}
}

func (t *leanTransport) lean(req *http.Request) bool {
	return (req.Method == http.MethodGet || req.Method == http.MethodHead) &&
		(req.Body == nil || req.Body == http.NoBody) && req.ContentLength == 0 &&
		req.URL.Scheme == "http" && req.Header.Get("Upgrade") == "" && !req.Close
}

// RoundTrip sends req upstream.
func (t *leanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.lean(req) {
		return t.full.RoundTrip(req)
	}
	ctx := req.Context()
	ep := endpoint{addr: dialAddr("http", req.URL.Host)}
	for attempt := 0; ; attempt++ {
		c, reused, err := t.pool.get(ctx, ep, attempt > 0, time.Time{}, 0)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(ctx, c, req, ep)
		if err == nil {
			return resp, nil
		}
		_ = c.conn.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if !reused || attempt > 0 {
			return nil, err
		}
		// A pooled connection the upstream closed while idle: once more,
		// on a new connection (the request is idempotent and body-less).
	}
}

// exchange writes req on c and reads the response head; the body is read
// later through leanBody, which gives c back to the pool at its end.
func (t *leanTransport) exchange(ctx context.Context, c *Conn, req *http.Request, ep endpoint) (*http.Response, error) {
	// Cancellation (the upstream timeout, a client gone) closes the
	// connection, which unblocks any read or write on it.
	c.ReadDeadline.Clear() // a deadline the fast path left behind
	c.WriteDeadline.Clear()
	stop := context.AfterFunc(ctx, func() { _ = c.conn.Close() })
	if err := req.Write(c.Writer); err != nil {
		stop()
		return nil, err
	}
	if err := c.Writer.Flush(); err != nil {
		stop()
		return nil, err
	}
	c.limit.N = t.maxHeader // bound the response head
	resp, err := http.ReadResponse(c.Reader, req)
	// Informational answers (103 Early Hints) go to the client through the
	// request's client trace, as http.Transport hands them to
	// httputil.ReverseProxy; the final answer follows on the connection.
	for n := 0; err == nil && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols && n < h1.Max1xx; n++ {
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err = trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
				break
			}
		}
		c.limit.N = t.maxHeader
		resp, err = http.ReadResponse(c.Reader, req)
	}
	if err != nil {
		stop()
		return nil, err
	}
	if resp.StatusCode < 200 {
		stop()
		_ = resp.Body.Close()
		return nil, fmt.Errorf("sidecar: upstream sent %d on a body-less %s", resp.StatusCode, req.Method)
	}
	c.limit.N = 1<<63 - 1 - int64(c.Reader.Size())
	lb := &leanBody{t: t, c: c, body: resp.Body, stop: stop, ep: ep, reusable: !resp.Close}
	if resp.Body == http.NoBody {
		lb.finish(true)
		return resp, nil
	}
	resp.Body = lb
	return resp, nil
}

// leanBody returns the connection to the pool once the body was read to its
// end, and closes it otherwise.
type leanBody struct {
	t        *leanTransport
	c        *Conn
	body     io.ReadCloser
	stop     func() bool
	ep       endpoint
	reusable bool
	done     bool
}

func (b *leanBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

func (b *leanBody) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *leanBody) finish(complete bool) {
	b.done = true
	cancelled := !b.stop() // the context was cancelled: the conn is closed
	if complete && b.reusable && !cancelled {
		b.t.pool.put(b.ep, b.c)
		return
	}
	_ = b.c.conn.Close()
}

// CloseIdleConnections closes every pooled connection (both transports).
func (t *leanTransport) CloseIdleConnections() {
	t.pool.CloseIdleConnections()
	if ci, ok := t.full.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}
