package auth_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/contentguard/contentguard/edge/auth"
	"github.com/golang-jwt/jwt/v5"
)

// benchToken is a realistic access token: the policy's issuer and audience,
// a subject, scopes, iat/exp and a jti.
func benchToken(b *testing.B, method jwt.SigningMethod, key any, kid string) string {
	return sign(b, method, key, kid, claims(map[string]any{"jti": "0192f0c5-7a3e-7b4c-9d2e-5f8a1b2c3d4e"}))
}

func benchVerify(b *testing.B, v *auth.Verifier, tok string) {
	ctx := context.Background()
	if _, reason := v.Verify(ctx, tok); reason != auth.ReasonOK {
		b.Fatalf("benchmark token refused: %q", reason)
	}
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, reason := v.Verify(ctx, tok); reason != auth.ReasonOK {
			b.Fatal(reason)
		}
	}
}

// BenchmarkVerifyES256Cold is a full verification: parse, ECDSA P-256
// verify, claim checks (cache disabled).
func BenchmarkVerifyES256Cold(b *testing.B) {
	k := fixtureKeys(b)
	v := newVerifier(b, []auth.Provider{mainProvider(b)}, auth.Options{CacheSize: -1})
	benchVerify(b, v, benchToken(b, jwt.SigningMethodES256, k.ec256, "ec1"))
}

func BenchmarkVerifyColdOtherAlgorithms(b *testing.B) {
	k := fixtureKeys(b)
	v := newVerifier(b, []auth.Provider{mainProvider(b), hsProvider(b)}, auth.Options{CacheSize: -1})
	for _, tc := range []struct {
		name string
		tok  string
	}{
		{"RS256", benchToken(b, jwt.SigningMethodRS256, k.rsa, "rsa1")},
		{"EdDSA", benchToken(b, jwt.SigningMethodEdDSA, k.ed, "ed1")},
		{"HS256", sign(b, jwt.SigningMethodHS256, k.secret, "", claims(map[string]any{"iss": hsIssuer}))},
	} {
		b.Run(tc.name, func(b *testing.B) { benchVerify(b, v, tc.tok) })
	}
}

// BenchmarkVerifyCached is the hit path: SHA-256 of the token, one shard
// read lock, an expiry and key-generation check.
func BenchmarkVerifyCached(b *testing.B) {
	k := fixtureKeys(b)
	v := newVerifier(b, []auth.Provider{mainProvider(b)}, auth.Options{})
	benchVerify(b, v, benchToken(b, jwt.SigningMethodES256, k.ec256, "ec1"))
}

func BenchmarkVerifyCachedParallel(b *testing.B) {
	k := fixtureKeys(b)
	v := newVerifier(b, []auth.Provider{mainProvider(b)}, auth.Options{})
	tok := benchToken(b, jwt.SigningMethodES256, k.ec256, "ec1")
	ctx := context.Background()
	v.Verify(ctx, tok)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, reason := v.Verify(ctx, tok); reason != auth.ReasonOK {
				b.Error(reason)
				return
			}
		}
	})
}

// BenchmarkVerifyRejectOversized shows that oversized tokens cost nothing.
func BenchmarkVerifyRejectOversized(b *testing.B) {
	v := newVerifier(b, []auth.Provider{mainProvider(b)}, auth.Options{})
	tok := string(make([]byte, 16<<10))
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, reason := v.Verify(ctx, tok); reason != auth.ReasonMalformed {
			b.Fatal(reason)
		}
	}
}

func BenchmarkKeyringLookup(b *testing.B) {
	for _, n := range []int{1, 100} {
		keys := make([]auth.APIKey, n)
		for i := range keys {
			keys[i] = auth.APIKey{ID: fmt.Sprint("k", i), SHA256: sha256.Sum256([]byte(fmt.Sprint("secret-key-value-", i))), Scopes: []string{"read"}}
		}
		ring := auth.NewKeyring(keys)
		presented := fmt.Sprint("secret-key-value-", n-1)
		b.Run(fmt.Sprint(n, "keys"), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, ok := ring.Lookup(presented); !ok {
					b.Fatal("no match")
				}
			}
		})
	}
}
