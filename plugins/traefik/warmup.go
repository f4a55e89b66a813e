package traefik

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/policy"
)

// warmPeer is where warmUp's requests come from: TEST-NET-1 (RFC 5737).
const warmPeer = "192.0.2.1:1"

// warmUp runs every kind of decision of policy p once through a middleware
// of its own, with handlers that stand in for Traefik's proxy.
//
// Yaegi v0.16.1 resolves the reflect type of an interpreted method, and of
// the wrappers that let compiled code call interpreted code, the first time
// they run, without a lock: two requests that take such a path for the
// first time together race inside the interpreter (docs/traefik.md, "Under
// Yaegi"). Traefik sends a new middleware
// concurrent requests at once, so every path is taken here first: each
// route without credentials, with bad ones and with good ones (an API key,
// and a token of every algorithm family the policy accepts, verified and
// then found in the cache), from an Origin and as a CORS preflight, with a
// body the proxy reads, an h2c and a websocket upgrade; a path that matches
// nothing and one to normalise; and the proxy's answers — a service's,
// streamed or not, its own 502, 504 and 499, the upstream timeout, and a
// body that breaks.
//
// The middleware is a copy: an engine over rate-limit buckets, breakers and
// a clock of its own, whose policy has warm-up credentials added (keys made
// here, never written anywhere), so no client's budget or breaker is
// touched and no credential of the policy is needed.
func warmUp(ctx context.Context, p *policy.Policy, now func() time.Time) (err error) {
	// What Yaegi resolves lazily is code, not data: once a kind of request
	// has run in this interpreter, it needs no warming for the next policy.
	kinds := warmKinds(p)
	warmed.Lock()
	defer warmed.Unlock()
	if warmed.kinds[kinds] {
		return nil
	}
	if err := warmPolicy(ctx, p, now); err != nil {
		return err
	}
	warmed.kinds[kinds] = true
	return nil
}

// warmed are the kinds of policy (warmKinds) warmed in this interpreter.
var warmed = struct {
	sync.Mutex
	kinds map[string]bool
}{kinds: map[string]bool{}}

// warmKinds names what of p's paths a warm-up takes that another policy's
// may not: the algorithm families of its tokens, API keys, CORS.
func warmKinds(p *policy.Policy) string {
	var b strings.Builder
	s := &p.Spec
	for i := 0; i < len(s.Auth.JWT.Providers); i++ {
		for _, alg := range s.Auth.JWT.Providers[i].Algorithms {
			if !strings.Contains(b.String(), alg[:2]+" ") {
				b.WriteString(alg[:2] + " ")
			}
		}
	}
	if s.Auth.APIKeys != nil {
		b.WriteString("apiKeys ")
	}
	if s.CORS != nil {
		b.WriteString("cors ")
	}
	return b.String()
}

// warmPolicy is warmUp for a policy of a kind not warmed yet.
func warmPolicy(ctx context.Context, p *policy.Policy, now func() time.Time) (err error) {
	start := now()
	clock := func() time.Time { return start }
	creds, err := warmCredentials(p, start)
	if err != nil {
		return err
	}
	rates := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: clock})
	defer rates.Close()
	e, err := edge.New(ctx, creds.policy, edge.Options{
		Now:            clock,
		LocalRateStore: rates,
		Breakers:       edge.NewBreakers(creds.policy, clock, nil),
		// One cached token at a time: the second token evicts the first.
		Auth: auth.Options{CacheSize: 1},
	})
	if err != nil {
		return err
	}
	defer e.Close()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("warming up: panic: %v", r)
		}
	}()
	m := newMiddleware(nil, "warm-up", e, creds.policy, time.AfterFunc)
	s := &p.Spec
	for i := 0; i < len(s.Routes); i++ {
		warmRoute(m, &s.Routes[i], s, &creds)
	}
	warmRequest(m, http.MethodGet, "/contentguard-warm-up//%2e%2e/x/./", nil, warmService)
	warmRequest(m, "PATCH", "/contentguard-warm-up", http.Header{"Upgrade": {"h2c"}}, warmService)
	return nil
}

// warmRoute sends a route every kind of request.
func warmRoute(m *Middleware, rt *policy.Route, s *policy.Spec, creds *warmCreds) {
	path := rt.Match.Path
	if path == "" {
		path = rt.Match.PathPrefix + "contentguard-warm-up"
	}
	method := http.MethodGet
	if len(rt.Match.Methods) > 0 {
		method = rt.Match.Methods[0]
	}
	var good []http.Header
	for i := 0; i < len(creds.tokens); i++ {
		good = append(good, http.Header{"Authorization": {"Bearer " + creds.tokens[i]}})
	}
	if s.Auth.APIKeys != nil {
		good = append(good, http.Header{s.Auth.APIKeys.Header: {creds.apiKey}})
		warmRequest(m, method, path, http.Header{s.Auth.APIKeys.Header: {"contentguard-warm-up"}}, warmService)
	}
	if len(good) == 0 {
		good = append(good, http.Header{})
	}
	warmRequest(m, method, path, nil, warmService)
	warmRequest(m, method, path, http.Header{"Authorization": {"Bearer e30.e30.e30"}}, warmService)
	// Each good credential twice: verified, then found in the cache.
	for i := 0; i < len(good); i++ {
		warmRequest(m, method, path, good[i], warmService)
		warmRequest(m, method, path, good[i], warmStream)
	}
	h := good[0]
	for _, next := range []http.Handler{warmProxyFailed(http.StatusBadGateway), warmProxyFailed(http.StatusGatewayTimeout),
		warmProxyFailed(499), http.HandlerFunc(warmReadBody)} {
		warmRequest(m, http.MethodPost, path, h, next)
	}
	// A chunked body that breaks: its second chunk is malformed.
	broken, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + path +
		" HTTP/1.1\r\nHost: warm-up\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\nzz\r\n")))
	if err == nil {
		broken.RemoteAddr = warmPeer
		for k, v := range h {
			broken.Header[k] = v
		}
		serve(m, httptest.NewRecorder(), broken, http.HandlerFunc(warmBrokenBody))
	}
	warmRequest(m, http.MethodGet, path, withHeader(h, "Upgrade", "websocket"), warmService)
	if s.CORS != nil && len(s.CORS.AllowOrigins) > 0 {
		origin := strings.Replace(s.CORS.AllowOrigins[0], "*", "warm-up", 1)
		warmRequest(m, method, path, withHeader(h, "Origin", origin), warmService)
		warmRequest(m, http.MethodOptions, path, http.Header{"Origin": {origin}, "Access-Control-Request-Method": {method}}, warmService)
	}
	warmTimeout(m, method, path, h)
}

func withHeader(h http.Header, name, value string) http.Header {
	c := h.Clone()
	c.Set(name, value)
	return c
}

// warmService is a service's answer written by compiled code, as Traefik's
// proxy writes it: headers, a status, a body.
var warmService = http.NotFoundHandler()

// warmStream is a streamed answer: no Content-Length.
var warmStream = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	_, _ = io.WriteString(w, "data: warm-up\n\n")
})

// warmProxyFailed answers as Traefik's proxy does when the service gave no
// answer: a bare status.
func warmProxyFailed(status int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, http.StatusText(status))
	})
}

// warmReadBody reads the body with compiled code, as the proxy does.
func warmReadBody(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	warmService.ServeHTTP(w, r)
}

// warmBrokenBody reads a body that breaks (the requests warmRoute sends it
// have one), and answers as Traefik's proxy does then.
func warmBrokenBody(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.WriteHeader(http.StatusInternalServerError)
}

// warmTimeout lets the upstream timer fire: the proxy waits for the
// cancelled request, as Traefik's does, and answers 499.
func warmTimeout(m *Middleware, method, path string, h http.Header) {
	wait := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		w.WriteHeader(499)
	})
	r := warmRequestFor(method, path, h)
	x := &exchange{w: httptest.NewRecorder(), m: m}
	x.d = (*edge.Engine).Check(m.engine, r.Context(), edge.Request{Method: method, Path: path, Header: r.Header})
	if !x.d.Allow {
		return
	}
	x.d.Timeout = time.Millisecond
	r = arm(x, r)
	wait.ServeHTTP(x, r)
}

// warmRequest sends one request through the middleware to next.
func warmRequest(m *Middleware, method, target string, h http.Header, next http.Handler) {
	serve(m, httptest.NewRecorder(), warmRequestFor(method, target, h), next)
}

func warmRequestFor(method, target string, h http.Header) *http.Request {
	var body io.Reader
	if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		body = strings.NewReader("{}")
	}
	r := httptest.NewRequest(method, target, body)
	r.RemoteAddr = warmPeer
	for k, v := range h {
		r.Header[k] = v
	}
	return r
}

// warmCreds are the policy with warm-up credentials added, and the
// credentials.
type warmCreds struct {
	policy *policy.Policy
	tokens []string
	apiKey string
}

// warmCredentials adds to a copy of p an API key and, for every algorithm
// family its JWT providers accept, a provider with a key made here, and
// signs a token with each; every credential holds every scope the routes
// ask for.
func warmCredentials(p *policy.Policy, now time.Time) (warmCreds, error) {
	q := *p
	s := &q.Spec
	var scopes []string
	for i := 0; i < len(s.Routes); i++ {
		scopes = append(scopes, s.Routes[i].Auth.Scopes...)
	}
	creds := warmCreds{policy: &q}
	if s.Auth.APIKeys != nil {
		keys := *s.Auth.APIKeys
		creds.apiKey = randomText()
		keys.Keys = append(append([]policy.APIKey(nil), keys.Keys...),
			policy.APIKey{ID: "contentguard-warm-up", SHA256: sha256.Sum256([]byte(creds.apiKey)), Scopes: scopes})
		s.Auth.APIKeys = &keys
	}
	providers := s.Auth.JWT.Providers
	if len(providers) == 0 {
		return creds, nil
	}
	done := map[string]bool{}
	added := append([]policy.JWTProvider(nil), providers...)
	for i := 0; i < len(providers); i++ {
		for j := 0; j < len(providers[i].Algorithms); j++ {
			alg := providers[i].Algorithms[j]
			if done[alg[:2]] {
				continue
			}
			done[alg[:2]] = true
			pr, token, err := warmProvider(alg, providers[0].ForwardClaims, scopes, now)
			if err != nil {
				return creds, fmt.Errorf("warm-up key for %s: %w", alg, err)
			}
			added = append(added, pr)
			creds.tokens = append(creds.tokens, token)
		}
	}
	s.Auth.JWT.Providers = added
	return creds, nil
}

// warmProvider makes a provider that accepts alg with a key of its own,
// and a token it accepts.
func warmProvider(alg string, forward []policy.ClaimHeader, scopes []string, now time.Time) (policy.JWTProvider, string, error) {
	pr := policy.JWTProvider{
		Name:          "contentguard-warm-up-" + alg,
		Issuer:        "contentguard:warm-up:" + alg,
		Audiences:     []string{"contentguard:warm-up"},
		Algorithms:    []string{alg},
		ScopeClaim:    "scope",
		ForwardClaims: forward,
	}
	var signer crypto.Signer
	var jwk string
	switch alg[:2] {
	case "HS":
		secret := randomText()
		pr.Secret = &policy.SecretRef{Value: secret}
		return pr, warmToken(alg, []byte(secret), pr, scopes, now), nil
	case "ES":
		curve := elliptic.P256()
		if alg == "ES384" {
			curve = elliptic.P384()
		} else if alg == "ES512" {
			curve = elliptic.P521()
		}
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			return pr, "", err
		}
		size := (curve.Params().BitSize + 7) / 8
		jwk = `{"kty":"EC","crv":"` + curve.Params().Name + `","x":"` + b64(k.X, size) + `","y":"` + b64(k.Y, size) + `"`
		signer = k
	case "RS", "PS":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return pr, "", err
		}
		jwk = `{"kty":"RSA","n":"` + b64(k.N, 0) + `","e":"` + b64(big.NewInt(int64(k.E)), 0) + `"`
		signer = k
	case "Ed":
		pub, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return pr, "", err
		}
		jwk = `{"kty":"OKP","crv":"Ed25519","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"`
		signer = k
	default:
		return pr, "", errors.New("unknown algorithm family")
	}
	pr.JWKS = &policy.KeySource{Inline: `{"keys":[` + jwk + `,"kid":"warm-up","alg":"` + alg + `","use":"sig"}]}`}
	return pr, warmToken(alg, signer, pr, scopes, now), nil
}

func warmToken(alg string, key any, pr policy.JWTProvider, scopes []string, now time.Time) string {
	t := jwt.NewWithClaims(jwt.GetSigningMethod(alg), jwt.MapClaims{
		"iss":   pr.Issuer,
		"aud":   pr.Audiences[0],
		"sub":   "contentguard:warm-up",
		"exp":   now.Add(time.Hour).Unix(),
		"scope": strings.Join(scopes, " "),
	})
	t.Header["kid"] = "warm-up"
	s, err := t.SignedString(key)
	if err != nil {
		panic("warm-up: signing a token: " + err.Error())
	}
	return s
}

func b64(n *big.Int, size int) string {
	b := n.Bytes()
	if size > len(b) {
		b = append(make([]byte, size-len(b)), b...)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomText() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
