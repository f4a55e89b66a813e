package upstream

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Target is where a policy forwards: scheme, host and an optional base path
// that prefixes every forwarded path.
type Target struct {
	Scheme string // http or https
	Host   string // host[:port] as written in the URL: the Host header
	Addr   string // host:port dialled: the scheme's port when Host has none
	Base   string // escaped, without a trailing slash; "" for none
	Name   string // the circuit breaker's name: host[:port]
}

// ParseTarget reads an upstream URL, http(s)://host[:port][/base], without
// user, query or fragment.
func ParseTarget(raw string) (Target, error) {
	if raw == "" {
		return Target{}, fmt.Errorf("sidecar: no upstream: set spec.upstream.url or --upstream")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("sidecar: upstream %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return Target{}, fmt.Errorf("sidecar: upstream %q: want http(s)://host[:port][/base] without user, query or fragment", raw)
	}
	return Target{
		Scheme: u.Scheme,
		Host:   u.Host,
		Addr:   dialAddr(u.Scheme, u.Host),
		Base:   strings.TrimRight(u.EscapedPath(), "/"),
		Name:   u.Host,
	}, nil
}

// dialAddr is host with the scheme's default port when it names none, as
// http.Transport dials it.
func dialAddr(scheme, host string) string {
	if _, port, err := net.SplitHostPort(host); err == nil && port != "" {
		return host
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	h := strings.TrimSuffix(host, ":") // "host:" has an empty port
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return net.JoinHostPort(h, port)
}

// String is the target as a URL.
func (t *Target) String() string { return t.Scheme + "://" + t.Host + t.Base }
