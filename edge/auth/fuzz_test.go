package auth_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge/auth"
	"github.com/golang-jwt/jwt/v5"
)

// fuzzFixture is deterministic — fixed keys, fixed claims, and algorithms
// whose signatures are deterministic (EdDSA, HS256) — so the valid tokens in
// the committed corpus are byte-identical to the ones rebuilt on every run.
type fuzzFixture struct {
	v       *auth.Verifier
	validEd string
	validHS string
}

func newFuzzFixture(tb testing.TB) fuzzFixture {
	ed := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	secret := bytes.Repeat([]byte("fuzz-secret-"), 3)
	main := auth.Provider{
		Name:       "main",
		Issuer:     testIssuer,
		Audiences:  []string{testAudience},
		Algorithms: []string{"EdDSA", "ES256", "RS256"},
		JWKSInline: jwksFor(tb, map[string]crypto.PublicKey{"ed1": ed.Public()}, nil),
	}
	hs := auth.Provider{
		Name:       "shared",
		Issuer:     hsIssuer,
		Audiences:  []string{testAudience},
		Algorithms: []string{"HS256"},
		Secret:     secret,
	}
	v := newVerifier(tb, []auth.Provider{main, hs}, auth.Options{CacheSize: 64})
	c := jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "fuzz", "exp": t0.Add(time.Hour).Unix(), "scope": "read"}
	hc := jwt.MapClaims{"iss": hsIssuer, "aud": testAudience, "sub": "fuzz", "exp": t0.Add(time.Hour).Unix(), "scope": "read"}
	return fuzzFixture{
		v:       v,
		validEd: sign(tb, jwt.SigningMethodEdDSA, ed, "ed1", c),
		validHS: sign(tb, jwt.SigningMethodHS256, secret, "", hc),
	}
}

func knownReason(r auth.Reason) bool {
	switch r {
	case auth.ReasonOK, auth.ReasonMalformed, auth.ReasonAlgorithm, auth.ReasonUnknownKey,
		auth.ReasonSignature, auth.ReasonExpired, auth.ReasonNotYetValid, auth.ReasonIssuer,
		auth.ReasonAudience, auth.ReasonNoKeys:
		return true
	}
	return false
}

// FuzzVerify feeds arbitrary tokens, and single-byte mutations of a valid
// token, to Verify: it must never panic, always answer a known reason, and
// accept only the two tokens that were actually signed.
func FuzzVerify(f *testing.F) {
	fx := newFuzzFixture(f)
	f.Add(fx.validEd, uint16(0), byte('A'))
	f.Add(fx.validHS, uint16(40), byte('.'))
	f.Add("", uint16(1), byte(0))
	f.Add("a.b.c", uint16(len(fx.validEd)-1), byte('B'))
	f.Add(rawToken(`{"alg":"none"}`, `{"iss":"`+testIssuer+`","aud":"`+testAudience+`","exp":9999999999}`, ""), uint16(5), byte('x'))
	f.Add(rawToken(`{"alg":"HS256","kid":"ed1"}`, `{"iss":"`+testIssuer+`"}`, "AAAA"), uint16(9), byte('='))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token string, pos uint16, b byte) {
		id, reason := fx.v.Verify(ctx, token)
		if !knownReason(reason) {
			t.Fatalf("unknown reason %q", reason)
		}
		if reason == auth.ReasonOK && token != fx.validEd && token != fx.validHS {
			t.Fatalf("accepted a token nobody signed: %q (identity %+v)", token, id)
		}
		if reason != auth.ReasonOK && (id.Subject != "" || id.Claims != nil || id.Scopes != nil) {
			t.Fatalf("refused (%q) but returned identity %+v", reason, id)
		}
		mutated := []byte(fx.validEd)
		mutated[int(pos)%len(mutated)] = b
		if _, reason := fx.v.Verify(ctx, string(mutated)); reason == auth.ReasonOK && string(mutated) != fx.validEd {
			t.Fatalf("accepted the valid token with byte %d set to %q: %s", int(pos)%len(mutated), b, mutated)
		}
	})
}

func TestFuzzFixtureTokensAreValid(t *testing.T) {
	fx := newFuzzFixture(t)
	for _, tok := range []string{fx.validEd, fx.validHS} {
		if _, reason := fx.v.Verify(context.Background(), tok); reason != auth.ReasonOK {
			t.Fatalf("fuzz fixture token refused: %q", reason)
		}
	}
	// The committed corpus must hold the tokens rebuilt here, or its
	// "accepted only if unchanged" seeds test nothing.
	for file, tok := range map[string]string{"valid-eddsa": fx.validEd, "valid-hs256": fx.validHS} {
		b, err := os.ReadFile(filepath.Join("testdata/fuzz/FuzzVerify", file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), strconv.Quote(tok)) {
			t.Errorf("corpus file %s does not hold the fixture token %s", file, tok)
		}
	}
}

// FuzzParseJWKS: arbitrary documents never panic, and every key accepted is
// one MarshalJWKS can publish and ParseJWKS reads back identically.
func FuzzParseJWKS(f *testing.F) {
	// No fixtureKeys here: RSA key generation in an instrumented fuzz worker
	// takes long enough to starve the fuzzer. The RSA key is RFC 7638's.
	ed := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	f.Add([]byte(jwksFor(f, map[string]crypto.PublicKey{"ed": ed.Public()}, nil)))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","alg":"PS256","e":"AQAB","n":"` + rfc7638N + `"},` +
		`{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","use":"enc"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","alg":"PS256"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		keys, err := auth.ParseJWKS(doc)
		if err != nil {
			return
		}
		public := make(map[string]crypto.PublicKey)
		for kid, key := range keys {
			if key.KeyID != kid {
				t.Fatalf("key under %q says kid %q", kid, key.KeyID)
			}
			if _, symmetric := key.Key.([]byte); !symmetric {
				public[kid] = key.Key
			}
		}
		if len(public) == 0 {
			return
		}
		out, err := auth.MarshalJWKS(public)
		if err != nil {
			t.Fatalf("parsed keys do not marshal: %v", err)
		}
		back, err := auth.ParseJWKS(out)
		if err != nil || len(back) != len(public) {
			t.Fatalf("round trip: %d keys, %v", len(back), err)
		}
		for kid, key := range public {
			eq, ok := key.(interface{ Equal(crypto.PublicKey) bool })
			if !ok || !eq.Equal(back[kid].Key) {
				t.Fatalf("kid %q changed in the round trip", kid)
			}
		}
	})
}
