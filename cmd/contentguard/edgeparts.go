package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/internal/keyfile"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/sidecar"
	"github.com/contentguard/contentguard/sidecar/authz"
	"github.com/contentguard/contentguard/sidecar/issuer"
)

// issuerFor builds the policy's token issuer, or returns nil when the policy
// has no spec.tokenIssuer. Refresh tokens live in rdb when given, else in
// Redis when the policy's rate-limit store is Redis (so replicas agree),
// else in memory. Its metrics go to reg (the sidecar's admin /metrics). The returned close releases a client it opened.
func issuerFor(ctx context.Context, p *policy.Policy, rdb redis.UniversalClient, reg prometheus.Registerer, logger *slog.Logger) (*issuer.Issuer, func(), error) {
	if p.Spec.TokenIssuer == nil {
		return nil, func() {}, nil
	}
	closeFn := func() {}
	var store issuer.Store
	switch {
	case rdb != nil:
		store = issuer.NewRedis(rdb, "")
	case p.Spec.RateLimit.Store.Type == "redis":
		opts, err := redis.ParseURL(p.Spec.RateLimit.Store.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("token issuer: redis URL: %w", err)
		}
		c := redis.NewClient(opts)
		closeFn = func() { _ = c.Close() }
		store = issuer.NewRedis(c, "")
	}
	iss, err := issuer.New(ctx, p, issuer.Options{Store: store, Logger: logger, Registry: reg})
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	return iss, closeFn, nil
}

// withIssuer serves the issuer in-process behind the engine.
func withIssuer(opts *sidecar.Options, iss *issuer.Issuer) {
	if iss == nil {
		return
	}
	opts.Local = iss.Handler()
	opts.LocalPaths = iss.Paths()
	// Its keys reach the verifier in process: its tokens are accepted from
	// the first request, even with an ephemeral key and a provider whose
	// jwks.url names this sidecar.
	opts.InProcessJWKS = iss.InProcessJWKS()
}

// authzHandler is the NGINX auth_request endpoint over the sidecar's
// current engine; trusted is a comma-separated list of CIDRs ("" = the
// policy's clientIP.trustedProxies), secretFile holds the secret that seals
// rejections ("" = a random one of this process).
func authzHandler(srv *sidecar.Server, trusted, secretFile string, logger *slog.Logger) (http.Handler, error) {
	var prefixes []netip.Prefix
	for _, s := range strings.Split(trusted, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("--authz-trusted: %w", err)
		}
		prefixes = append(prefixes, p)
	}
	var secret []byte
	if secretFile != "" {
		b, err := keyfile.Read(secretFile)
		if err != nil {
			return nil, fmt.Errorf("--authz-secret-file: %w", err)
		}
		secret = bytes.TrimSpace(b)
		if len(secret) == 0 {
			return nil, fmt.Errorf("--authz-secret-file: %s is empty", secretFile)
		}
	}
	return authz.New(authz.Options{Engine: srv.Engine, TrustedPeers: prefixes, Secret: secret, Logger: logger})
}

// serveAuthz serves the authz endpoint on addr until the returned stop.
// Its requests do not end with ctx: NGINX goes on asking through the
// sidecar's drain, and a decision whose context had ended would find its
// Redis calls and key fetches cut short.
func serveAuthz(ctx context.Context, addr string, h http.Handler, logger *slog.Logger) (func(), error) {
	return serveHTTP(context.WithoutCancel(ctx), addr, &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 128 << 10}, logger, "the NGINX auth_request endpoint")
}
