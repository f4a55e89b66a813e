package sidecar

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// NewTransport returns the upstream transport the sidecar uses by default:
// many idle keep-alive connections per host (the upstream is usually one
// host, and a proxy that redials under load spends its time in connect and
// TIME_WAIT), bounded dial and TLS times, no environment proxy, and no
// transparent compression (bodies pass through as the upstream sent them).
// The per-request upstream timeout comes from the policy, not from here.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:           4096,
		MaxIdleConnsPerHost:    1024,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
	}
}

// upstreamTarget is where a plane forwards: scheme, host and an optional
// base path that prefixes every forwarded path.
type upstreamTarget struct {
	scheme, host, base string
	name               string // the breaker's name: host:port
}

func parseUpstream(raw string) (upstreamTarget, error) {
	if raw == "" {
		return upstreamTarget{}, fmt.Errorf("sidecar: no upstream: set spec.upstream.url or --upstream")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return upstreamTarget{}, fmt.Errorf("sidecar: upstream %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return upstreamTarget{}, fmt.Errorf("sidecar: upstream %q: want http(s)://host[:port][/base] without user, query or fragment", raw)
	}
	return upstreamTarget{
		scheme: u.Scheme,
		host:   u.Host,
		base:   strings.TrimRight(u.EscapedPath(), "/"),
		name:   u.Host,
	}, nil
}
