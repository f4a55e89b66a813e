package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/internal/clocktest"
)

const (
	testIssuer   = "https://auth.contentguard.local"
	testAudience = "content-api"
	hsIssuer     = "https://hs.contentguard.local"
)

// t0 is the fixed "now" of the tests.
var t0 = time.Unix(1_800_000_000, 0)

// testKeys holds one key per algorithm family, generated once per test binary
// (RSA generation is slow).
type testKeys struct {
	ec256  *ecdsa.PrivateKey
	ec384  *ecdsa.PrivateKey
	ec256b *ecdsa.PrivateKey // a second P-256 key, kid "ec2" in some sets
	rsa    *rsa.PrivateKey
	ed     ed25519.PrivateKey
	secret []byte
}

var (
	keysOnce sync.Once
	keysVal  *testKeys
)

func fixtureKeys(tb testing.TB) *testKeys {
	tb.Helper()
	keysOnce.Do(func() {
		k := &testKeys{secret: []byte("0123456789abcdef0123456789abcdef")}
		var err error
		if k.ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
		if k.ec256b, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
		keysVal = k
	})
	return keysVal
}

// jwksFor marshals public keys and then overrides "alg" per kid (an empty
// override removes the member).
func jwksFor(tb testing.TB, keys map[string]crypto.PublicKey, algs map[string]string) string {
	tb.Helper()
	raw, err := auth.MarshalJWKS(keys)
	if err != nil {
		tb.Fatalf("MarshalJWKS: %v", err)
	}
	if len(algs) == 0 {
		return string(raw)
	}
	var doc map[string][]map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		tb.Fatal(err)
	}
	for _, k := range doc["keys"] {
		if alg, ok := algs[k["kid"].(string)]; ok {
			if alg == "" {
				delete(k, "alg")
			} else {
				k["alg"] = alg
			}
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return string(out)
}

// mainJWKS is the key set of the "main" provider: kids ec1 (P-256), ec384,
// rsa1 (RS256), rsa-pss (the same RSA key pinned to PS256) and ed1.
func mainJWKS(tb testing.TB) string {
	k := fixtureKeys(tb)
	return jwksFor(tb, map[string]crypto.PublicKey{
		"ec1":     &k.ec256.PublicKey,
		"ec384":   &k.ec384.PublicKey,
		"rsa1":    &k.rsa.PublicKey,
		"rsa-pss": &k.rsa.PublicKey,
		"ed1":     k.ed.Public(),
	}, map[string]string{"rsa-pss": "PS256"})
}

func mainProvider(tb testing.TB) auth.Provider {
	return auth.Provider{
		Name:       "main",
		Issuer:     testIssuer,
		Audiences:  []string{testAudience},
		Algorithms: []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"},
		JWKSInline: mainJWKS(tb),
		ClockSkew:  30 * time.Second,
	}
}

func hsProvider(tb testing.TB) auth.Provider {
	return auth.Provider{
		Name:       "shared",
		Issuer:     hsIssuer,
		Audiences:  []string{testAudience},
		Algorithms: []string{"HS256"},
		Secret:     fixtureKeys(tb).secret,
	}
}

// newClock returns a fake clock reading t0.
func newClock() *clocktest.Clock { return clocktest.New(t0) }

func newVerifier(tb testing.TB, providers []auth.Provider, opts auth.Options) *auth.Verifier {
	tb.Helper()
	if opts.Now == nil {
		opts.Now = newClock().Now
	}
	if opts.NewTimer == nil {
		// Background refreshes wait for ever unless a test drives them:
		// nothing fetches behind a test's back.
		opts.NewTimer = func(func()) auth.Timer { return idleTimer{} }
	}
	v, err := auth.NewVerifier(context.Background(), providers, opts)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	tb.Cleanup(v.Close)
	return v
}

// idleTimer never fires.
type idleTimer struct{}

func (idleTimer) Reset(time.Duration) bool { return false }
func (idleTimer) Stop() bool               { return false }

// claims returns valid claims for the main provider at t0; overrides are
// applied on top (a nil value deletes the claim).
func claims(overrides map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss":   testIssuer,
		"aud":   testAudience,
		"sub":   "alice",
		"exp":   t0.Add(10 * time.Minute).Unix(),
		"iat":   t0.Unix(),
		"scope": "read write",
	}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func sign(tb testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// signWithHeader signs with extra header members.
func signWithHeader(tb testing.TB, method jwt.SigningMethod, key any, header map[string]any, c jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// rawToken builds a token from literal header and payload JSON and a raw
// signature segment, bypassing any signing library.
func rawToken(header, payload string, sig string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + sig
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
