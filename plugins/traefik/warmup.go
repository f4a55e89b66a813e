package traefik

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/policy"
)

// warmPeer is where warmUp's requests come from: TEST-NET-1 (RFC 5737).
const warmPeer = "192.0.2.1:1"

// warmUp runs every kind of decision of policy p once through a middleware
// of its own — an engine over rate-limit buckets and breakers that are
// thrown away after, so that no client's budget is spent — with handlers
// that stand in for Traefik's proxy.
//
// Yaegi v0.16.1 resolves some types and wrappers on the first run of a
// piece of code, without a lock: two requests taking a path for the first
// time together race inside the interpreter. Traefik sends a new
// middleware concurrent requests at once, so every path is taken here
// first: each route with and without credentials, with an Origin and as a
// CORS preflight, a path that matches nothing and one that is not a path;
// and the answers of the proxy — a service's answer written by compiled
// code, a streamed one, a body read by the proxy, the proxy's own 502, 504
// and 499, the upstream timeout and a client's broken body.
func warmUp(ctx context.Context, p *policy.Policy, now func() time.Time) (err error) {
	rates := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: now})
	defer rates.Close()
	e, err := edge.New(ctx, p, edge.Options{Now: now, LocalRateStore: rates, Breakers: edge.NewBreakers(p, now, nil)})
	if err != nil {
		return err
	}
	defer e.Close()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("warming up: panic: %v", r)
		}
	}()
	m := newMiddleware(nil, "warm-up", e, p, now)
	service := http.NotFoundHandler() // compiled, like Traefik's proxy
	s := &p.Spec
	for i := 0; i < len(s.Routes); i++ {
		rt := s.Routes[i]
		path := rt.Match.Path
		if path == "" {
			path = rt.Match.PathPrefix + "contentguard-warm-up"
		}
		method := http.MethodGet
		if len(rt.Match.Methods) > 0 {
			method = rt.Match.Methods[0]
		}
		warmRequest(m, method, path, nil, service)
		warmRequest(m, method, path, http.Header{"Authorization": {"Bearer e30.e30.e30"}}, service)
		if s.Auth.APIKeys != nil {
			warmRequest(m, method, path, http.Header{s.Auth.APIKeys.Header: {"contentguard-warm-up"}}, service)
		}
		if s.CORS != nil && len(s.CORS.AllowOrigins) > 0 {
			origin := strings.Replace(s.CORS.AllowOrigins[0], "*", "warm-up", 1)
			warmRequest(m, method, path, http.Header{"Origin": {origin}}, service)
			warmRequest(m, http.MethodOptions, path, http.Header{"Origin": {origin}, "Access-Control-Request-Method": {method}}, service)
		}
	}
	warmRequest(m, http.MethodGet, "/contentguard-warm-up//%2e%2e/x/./", nil, service)
	warmRequest(m, "PATCH", "/contentguard-warm-up", http.Header{"Upgrade": {"h2c"}}, service)
	return nil
}

// warmRequest sends one request through the middleware to next.
func warmRequest(m *Middleware, method, target string, h http.Header, next http.Handler) {
	var body io.Reader
	if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		body = strings.NewReader("{}")
	}
	r := httptest.NewRequest(method, target, body)
	r.RemoteAddr = warmPeer
	for k, v := range h {
		r.Header[k] = v
	}
	serve(m, httptest.NewRecorder(), r, next)
}
