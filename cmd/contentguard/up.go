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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/backend/api"
	"github.com/contentguard/contentguard/backend/cache"
	"github.com/contentguard/contentguard/backend/host"
	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/internal/buildinfo"
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

const upHelp = `Usage: contentguard up [flags]

Runs the backend and the edge (sidecar with the OAuth2 token endpoint) in one
process on the embedded default policy, for a first look or development. On
first run it writes a development ES256 key pair under the state directory
(keys/signing.pem, keys/jwks.json); the default policy's JWT provider and its
token issuer both use it. It prints the URLs, a ready token for the demo user
and a curl that analyses a text through the edge.

Nothing needs to be installed. With REDIS_URL set, every store is Redis:
rate limits, refresh tokens and the backend's result cache.

The demo user (demo / contentguard-demo), client and API key are for
development only.

Flags:
`

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "edge (public) listen address")
	adminAddr := fs.String("admin", "127.0.0.1:9901", "edge admin listen address")
	backendAddr := fs.String("backend", "127.0.0.1:8081", "backend listen address (the edge's upstream)")
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

	var rdb *redis.Client
	if url := os.Getenv("REDIS_URL"); url != "" {
		if rdb, err = cache.NewRedisFromURL(url); err != nil {
			return fail("REDIS_URL: %v", err)
		}
		defer rdb.Close()
		p.Spec.RateLimit.Store.Type = "redis"
		p.Spec.RateLimit.Store.URL = url
		if p.Spec.RateLimit.Store.OnError == "" {
			p.Spec.RateLimit.Store.OnError = "local"
		}
	}

	// Backend.
	bcfg := api.Config{Service: "contentguard-backend", Version: buildinfo.Version(), Logger: logger}
	if rdb != nil {
		bcfg.Cache, bcfg.CacheKind = cache.NewRedis(rdb, "contentguard:cache:", api.DefaultCacheTTL), "redis"
	}
	backend, err := api.New(bcfg)
	if err != nil {
		return fail("backend: %v", err)
	}
	bln, err := net.Listen("tcp", *backendAddr)
	if err != nil {
		return fail("listen %s: %v", *backendAddr, err)
	}
	backendURL := "http://" + bln.Addr().String()

	// Edge.
	var irdb redis.UniversalClient
	if rdb != nil {
		irdb = rdb
	}
	reg := telemetry.NewRegistry()
	iss, closeIssuer, err := issuerFor(ctx, p, irdb, reg, logger)
	if err != nil {
		bln.Close()
		return fail("token issuer: %v", err)
	}
	defer closeIssuer()
	sopts := sidecar.Options{Policy: p, Upstream: backendURL, Logger: logger, Registry: reg, DisableAccessLog: true}
	withIssuer(&sopts, iss)
	srv, err := sidecar.New(ctx, sopts)
	if err != nil {
		bln.Close()
		return fail("edge: %v", err)
	}
	defer srv.Close()
	pub, err := net.Listen("tcp", *listen)
	if err != nil {
		bln.Close()
		return fail("listen %s: %v", *listen, err)
	}
	adm, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		bln.Close()
		pub.Close()
		return fail("listen %s: %v", *adminAddr, err)
	}

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
	printUp(stdout, "http://"+pub.Addr().String(), "http://"+adm.Addr().String(), backendURL, p.Spec.TokenIssuer.Path, tok, rdb != nil)

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

func printUp(w io.Writer, edge, admin, backend, tokenPath string, tok *issuer.TokenResponse, redis bool) {
	stores := "memory (set REDIS_URL to share them)"
	if redis {
		stores = "redis"
	}
	fmt.Fprintf(w, `contentguard is up (policy: embedded default; stores: %s)

  edge     %s        every request judged by the policy
  admin    %s        /healthz /readyz /metrics /admin/breakers /admin/policy
  backend  %s        the analysis API itself, without the edge
  docs     %s/docs   API reference (backend)
  tokens   %s%s   OAuth2: password, client_credentials, refresh_token

Demo user %s / %s (development only). A token for it, valid %ds:

TOKEN=%s

Analyse a text through the edge:

curl -sS -X POST %s/api/v1/analyze -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d '{"content":"the quick brown fox jumps over the lazy dog"}'

Get another token:

curl -sS -X POST %s%s -d grant_type=password -d username=%s -d password=%s

Press Ctrl-C to stop.
`, stores, edge, admin, backend, backend, edge, tokenPath, demoUser, demoPassword, tok.ExpiresIn,
		tok.AccessToken, edge, edge, tokenPath, demoUser, demoPassword)
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
	data, err := os.ReadFile(keyPath)
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
	if jwks, err := os.ReadFile(jwksPath); err == nil && strings.Contains(string(jwks), `"`+kid+`"`) {
		return false, nil
	}
	doc, err := auth.MarshalJWKS(map[string]crypto.PublicKey{kid: &key.PublicKey})
	if err != nil {
		return false, err
	}
	return false, os.WriteFile(jwksPath, append(doc, '\n'), 0o644)
}
