// Package upstream is the sidecar's client of its upstream: where the
// upstream is (Target), the keep-alive connections to it (Pool), the
// round-tripper of the net/http path (a lean one for body-less GET and HEAD
// over the same pool, a tuned http.Transport for the rest), their
// timeouts, and the rule for when the fast path can serve (Client.FastPath).
//
// It dials and reads and writes upstream connections; it serves nothing.
// The two HTTP servers of the sidecar (packages fastpath and nethttp) reach
// the upstream only through it.
package upstream

import (
	"crypto/tls"
	"net/http"
)

// Client is the sidecar's way to its upstream, for both data paths.
type Client struct {
	pool *Pool             // nil with a custom transport
	rt   http.RoundTripper // the net/http path's
}

// NewClient returns the client for transport: nil for the default — a pool
// the fast path writes on directly, shared by the lean round-tripper,
// before a tuned http.Transport (NewTransport) for everything else, both
// with tlsConfig for https upstreams (nil: the system's roots) — or a
// custom RoundTripper, which the net/http path then uses for every request
// (tlsConfig is then the transport's business).
func NewClient(transport http.RoundTripper, tlsConfig *tls.Config) *Client {
	if transport != nil {
		return &Client{rt: transport}
	}
	full := NewTransport()
	if tlsConfig != nil {
		full.TLSClientConfig = tlsConfig.Clone()
	}
	pool := NewPool(tlsConfig)
	return &Client{pool: pool, rt: newLeanTransportOn(full, pool)}
}

// FastPath reports whether the fast path can serve with this client, and
// if not, why. It can with the default transport, to http and https
// upstreams alike. It writes requests on the pool's connections itself, so
// a custom transport, which takes http.Request values that only the
// net/http path makes, leaves every request to the net/http path.
func (c *Client) FastPath() (ok bool, why string) {
	if c.pool == nil {
		return false, "Options.Transport is set: a custom http.RoundTripper takes http.Request values, which only the net/http path makes"
	}
	return true, ""
}

// RoundTripper is the net/http path's transport.
func (c *Client) RoundTripper() http.RoundTripper { return c.rt }

// Pool is the fast path's connection pool; nil when the client has a
// custom transport.
func (c *Client) Pool() *Pool { return c.pool }

// CloseIdleConnections closes the idle connections of both paths.
func (c *Client) CloseIdleConnections() {
	if t, ok := c.rt.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}
