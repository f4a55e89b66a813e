package main

import (
	"context"
	"crypto"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/backend/api"
	"github.com/contentguard/contentguard/backend/cache"
	"github.com/contentguard/contentguard/backend/host"
	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/internal/buildinfo"
	"github.com/contentguard/contentguard/internal/keyfile"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar"
	"github.com/contentguard/contentguard/sidecar/issuer"
	"github.com/contentguard/contentguard/telemetry"
)

// The embedded default policy's demo credentials (policy/policyfile/default.yaml).
const (
	demoUser     = "demo"
	demoPassword = "contentguard-demo"
	demoAPIKey   = "demo-api-key"
)

// defaultEdgeOrigin is where the embedded default policy expects the edge
// (its token issuer, JWT provider and CORS origins); up puts the real
// listen address in its place.
const defaultEdgeOrigin = "127.0.0.1:8080"

const upHelp = `Usage: contentguard up [flags]

Runs everything the README shows in one process, on the embedded default
policy, for a first look or development:

  backend   the analysis API with asynchronous jobs and webhooks (jobs run
            in process; with REDIS_URL they go through Redis)
  edge      the sidecar in front of the backend, enforcing the policy, with
            the OAuth2 token endpoint and its discovery document
  admin     the edge's admin API (health, metrics, breakers, policy)
  docs      the backend's interactive API reference

It prints the URLs it really listens on, a token and a refresh token for the
demo user, the demo API key, and one curl per feature. On first run it writes
a development ES256 key pair under the state directory (keys/signing.pem,
keys/jwks.json); the default policy's JWT provider and token issuer use it.

Nothing needs to be installed. With REDIS_URL set, every store is Redis:
rate limits, refresh tokens, the result cache and the job queue (worked by
this process).

The demo user (demo / contentguard-demo), client and API key are for
development only, and webhooks may call back to this machine (loopback and
private addresses; 'contentguard backend' refuses them by default).

Flags:
`

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", defaultEdgeOrigin, "edge (public) listen address")
	adminAddr := fs.String("admin", "127.0.0.1:9901", "edge admin listen address")
	backendAddr := fs.String("backend", host.DefaultListen, "backend listen address (the edge's upstream)")
	stateDir := fs.String("state", defaultStateDir(), "state directory: development keys")
	logLevel := fs.String("log-level", envOr("LOG_LEVEL", "warn"), "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprint(stdout, upHelp)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "contentguard up: unexpected arguments %q\n", fs.Args())
		return 2
	}
	logger := telemetry.NewLogger(stderr, telemetry.ParseLevel(*logLevel))
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "contentguard up: "+format+"\n", a...)
		return 1
	}

	keys := filepath.Join(*stateDir, "keys")
	if created, err := ensureKeys(keys); err != nil {
		return fail("development keys: %v", err)
	} else if created {
		fmt.Fprintf(stdout, "wrote a development key pair to %s\n", keys)
	}
	p, err := policyfile.Default(*stateDir)
	if err != nil {
		return fail("default policy: %v", err)
	}

	// Listen first: every URL the policy and the banner name is derived
	// from an address actually bound.
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close() // after Serve returns, or on a failed start
		}
	}()
	for _, l := range []struct{ what, flag, addr string }{
		{"backend", "backend", *backendAddr}, {"edge", "listen", *listen}, {"admin", "admin", *adminAddr},
	} {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fail("%s: %v (--%s chooses another address)", l.what, err, l.flag)
		}
		lns = append(lns, ln)
	}
	bln, pub, adm := lns[0], lns[1], lns[2]
	urls := upURLs{
		Backend: listenURL(bln.Addr()), Edge: listenURL(pub.Addr()), Admin: listenURL(adm.Addr()),
		TokenPath: p.Spec.TokenIssuer.Path,
	}
	retarget(p, urls.Edge)

	redisURL := os.Getenv("REDIS_URL")
	var rdb *redis.Client
	if redisURL != "" {
		if rdb, err = cache.NewRedisFromURL(redisURL); err != nil {
			return fail("REDIS_URL: %v", err)
		}
		defer rdb.Close()
		// Every store would fail on its own, noisily: say it once, first.
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		err = rdb.Ping(pctx).Err()
		pcancel()
		if err != nil {
			return fail("REDIS_URL: Redis does not answer: %v (start it, or unset REDIS_URL to keep every store in memory)", err)
		}
		// What go-redis says later goes into the JSON log, as the backend's
		// and the sidecar's does (its logger is process-wide).
		redis.SetLogger(redisLogger{logger})
		p.Spec.RateLimit.Store.Type = "redis"
		p.Spec.RateLimit.Store.URL = redisURL
	}

	// Backend, with jobs and webhooks as `contentguard backend` mounts them.
	ver := buildinfo.Version()
	bcfg := api.Config{Service: "contentguard-backend", Version: ver, Logger: logger}
	if rdb != nil {
		bcfg.Cache, bcfg.CacheKind = cache.NewRedis(rdb, "contentguard:cache:", api.DefaultCacheTTL), "redis"
	}
	backend, err := api.New(bcfg)
	if err != nil {
		return fail("backend: %v", err)
	}
	closeAsync, err := mountJobsAndWebhooks(backend, asyncOptions{
		redisURL: redisURL, rdb: rdb, work: true,
		// A development stack: webhooks may call this machine.
		hooks: webhookFlags{allowPrivate: true, bodySignature: true},
	}, logger)
	if err != nil {
		return fail("%v", err)
	}
	defer closeAsync()

	// Edge.
	var irdb redis.UniversalClient
	if rdb != nil {
		irdb = rdb
	}
	reg := telemetry.NewRegistry()
	iss, closeIssuer, err := issuerFor(ctx, p, irdb, reg, logger)
	if err != nil {
		return fail("token issuer: %v", err)
	}
	defer closeIssuer()
	sopts := sidecar.Options{Policy: p, Upstream: urls.Backend, Logger: logger, Registry: reg, DisableAccessLog: true, Version: ver}
	withIssuer(&sopts, iss)
	srv, err := sidecar.New(ctx, sopts)
	if err != nil {
		return fail("edge: %v", err)
	}
	defer srv.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		errs <- host.Serve(ctx, bln, backend.Handler(), host.Options{Logger: logger, ShutdownTimeout: 5 * time.Second})
	}()
	go func() {
		defer wg.Done()
		errs <- srv.Serve(ctx, pub, adm)
	}()

	tok, oerr := iss.Token(ctx, issuer.TokenRequest{GrantType: issuer.GrantPassword, Username: demoUser, Password: demoPassword})
	if oerr != nil {
		cancel()
		wg.Wait()
		return fail("mint the demo token: %v", oerr)
	}
	if err := printUp(stdout, urls, tok, rdb != nil); err != nil {
		cancel()
		wg.Wait()
		return fail("%v", err)
	}

	var first error
	select {
	case <-ctx.Done():
	case first = <-errs:
		cancel()
	}
	wg.Wait()
	if first != nil && !errors.Is(first, context.Canceled) && !errors.Is(first, http.ErrServerClosed) {
		return fail("%v", first)
	}
	return 0
}

// listenURL is the http URL that reaches a bound address from this
// machine: an unspecified address (0.0.0.0, ::) is reached on loopback.
func listenURL(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	ip := ap.Addr().Unmap()
	switch {
	case ip.IsUnspecified() && ip.Is4():
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case ip.IsUnspecified():
		ip = netip.IPv6Loopback()
	}
	return "http://" + netip.AddrPortFrom(ip, ap.Port()).String()
}

// retarget points the default policy at the edge's real address: the token
// issuer's iss (and so its discovery document), the JWT provider that
// trusts it, and the CORS origins of the edge's own pages.
func retarget(p *policy.Policy, edge string) {
	from := "http://" + defaultEdgeOrigin
	if t := p.Spec.TokenIssuer; t != nil && t.Issuer == from {
		t.Issuer = edge
	}
	for i := range p.Spec.Auth.JWT.Providers {
		if p.Spec.Auth.JWT.Providers[i].Issuer == from {
			p.Spec.Auth.JWT.Providers[i].Issuer = edge
		}
	}
	if c := p.Spec.CORS; c != nil {
		u, err := url.Parse(edge)
		if err != nil {
			return
		}
		_, defaultPort, _ := net.SplitHostPort(defaultEdgeOrigin)
		for i, o := range c.AllowOrigins {
			switch o {
			case from:
				c.AllowOrigins[i] = edge
			case "http://localhost:" + defaultPort:
				c.AllowOrigins[i] = "http://localhost:" + u.Port()
			}
		}
	}
}

// upURLs are the addresses up serves on, as URLs.
type upURLs struct {
	Edge, Admin, Backend, TokenPath string
}

// upBanner is what up prints once everything listens. Every command in it
// runs as printed, pasted in order into one shell (the job's id is kept in
// JOB_ID for the poll); TestUpBannerCommandsWork runs them all.
var upBanner = template.Must(template.New("up").Parse(`contentguard is up (policy: embedded default; stores: {{.Stores}})

  edge       {{.Edge}}   every request judged by the policy
  admin      {{.Admin}}   /healthz /readyz /metrics /admin/breakers /admin/policy
  backend    {{.Backend}}   the analysis API itself, without the edge
  docs       {{.Backend}}/docs   interactive API reference (OpenAPI: /openapi.json)
  tokens     {{.Edge}}{{.TokenPath}}   OAuth2: password, client_credentials, refresh_token
  discovery  {{.Edge}}/.well-known/openid-configuration

Demo user {{.User}} / {{.Password}}, demo API key {{.APIKey}} (development only).
A token for the demo user, valid {{.ExpiresIn}}s, and its refresh token (single use: each refresh answers a new one):

TOKEN={{.Token}}
REFRESH={{.Refresh}}

Analyse a text through the edge, with the token or with the API key:

curl -sS -X POST {{.Edge}}/api/v1/analyze -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d '{"content":"the quick brown fox jumps over the lazy dog"}'
curl -sS -X POST {{.Edge}}/api/v1/analyze -H "X-API-Key: {{.APIKey}}" -H "Content-Type: application/json" -d '{"content":"the quick brown fox jumps over the lazy dog"}'

Register a webhook for finished analyses and batches (up lets webhooks call this machine: listen on 127.0.0.1:9000 to see the job below arrive):

curl -sS -X POST {{.Edge}}/api/v1/webhooks/register -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d '{"url":"http://127.0.0.1:9000/hook","events":["analysis_completed","batch_completed"]}'

Submit an asynchronous job (202: its id is kept in JOB_ID), then poll it until its status is completed:

JOB_ID=$(curl -sS -X POST {{.Edge}}/api/v1/jobs -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d '{"kind":"analyze","input":{"content":"a b a b c"}}' | sed -E 's/.*"id":"([^"]+)".*/\1/')
curl -sS {{.Edge}}/api/v1/jobs/$JOB_ID -H "Authorization: Bearer $TOKEN"

Refresh the token, or get a new one with the password:

curl -sS -X POST {{.Edge}}{{.TokenPath}} -d grant_type=refresh_token -d "refresh_token=$REFRESH"
curl -sS -X POST {{.Edge}}{{.TokenPath}} -d grant_type=password -d username={{.User}} -d password={{.Password}}

Press Ctrl-C to stop.
`))

func printUp(w io.Writer, urls upURLs, tok *issuer.TokenResponse, redis bool) error {
	stores := "memory, jobs in process; set REDIS_URL to share them"
	if redis {
		stores = "redis, jobs on Redis"
	}
	return upBanner.Execute(w, map[string]string{
		"Stores": stores, "Edge": urls.Edge, "Admin": urls.Admin, "Backend": urls.Backend, "TokenPath": urls.TokenPath,
		"User": demoUser, "Password": demoPassword, "APIKey": demoAPIKey,
		"ExpiresIn": strconv.FormatInt(tok.ExpiresIn, 10), "Token": tok.AccessToken, "Refresh": tok.RefreshToken,
	})
}

// defaultStateDir is $XDG_STATE_HOME/contentguard, else ./.contentguard.
func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "contentguard")
	}
	return ".contentguard"
}

// ensureKeys makes sure dir holds signing.pem and a jwks.json that
// publishes its public key: it generates a pair on first run, and rewrites
// only the JWKS when it is missing or names another key.
func ensureKeys(dir string) (bool, error) {
	keyPath, jwksPath := filepath.Join(dir, "signing.pem"), filepath.Join(dir, "jwks.json")
	data, err := keyfile.Read(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		_, err := writeKeyPair(dir, true)
		return err == nil, err
	}
	if err != nil {
		return false, err
	}
	key, err := issuer.ParseSigningKey(data)
	if err != nil {
		return false, fmt.Errorf("%s: %w (remove it to generate a new one)", keyPath, err)
	}
	kid, err := auth.Thumbprint(&key.PublicKey)
	if err != nil {
		return false, err
	}
	if jwks, err := keyfile.Read(jwksPath); err == nil && strings.Contains(string(jwks), `"`+kid+`"`) {
		return false, nil
	}
	doc, err := auth.MarshalJWKS(map[string]crypto.PublicKey{kid: &key.PublicKey})
	if err != nil {
		return false, err
	}
	return false, os.WriteFile(jwksPath, append(doc, '\n'), 0o644)
}
