package auth_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge/auth"
	"github.com/golang-jwt/jwt/v5"
)

func TestVerifyAcceptsEveryAlgorithmFamily(t *testing.T) {
	k := fixtureKeys(t)
	v := newVerifier(t, []auth.Provider{mainProvider(t), hsProvider(t)}, auth.Options{})
	hsClaims := claims(map[string]any{"iss": hsIssuer})
	tests := []struct {
		name, token, provider string
	}{
		{"ES256", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(nil)), "main"},
		{"ES384", sign(t, jwt.SigningMethodES384, k.ec384, "ec384", claims(nil)), "main"},
		{"RS256", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(nil)), "main"},
		{"PS256", sign(t, jwt.SigningMethodPS256, k.rsa, "rsa-pss", claims(nil)), "main"},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, k.ed, "ed1", claims(nil)), "main"},
		{"EdDSA without kid (only Ed25519 key)", sign(t, jwt.SigningMethodEdDSA, k.ed, "", claims(nil)), "main"},
		{"HS256 shared secret", sign(t, jwt.SigningMethodHS256, k.secret, "", hsClaims), "shared"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, reason := v.Verify(context.Background(), tc.token)
			if reason != auth.ReasonOK {
				t.Fatalf("reason %q, want valid", reason)
			}
			if id.Provider != tc.provider || id.Subject != "alice" {
				t.Errorf("identity %q/%q, want %s/alice", id.Provider, id.Subject, tc.provider)
			}
			if !reflect.DeepEqual(id.Scopes, []string{"read", "write"}) {
				t.Errorf("scopes %q", id.Scopes)
			}
			if !id.ExpiresAt.Equal(t0.Add(10 * time.Minute)) {
				t.Errorf("ExpiresAt %v", id.ExpiresAt)
			}
			if id.Claims["iat"] != float64(t0.Unix()) {
				t.Errorf("claims %v lack iat", id.Claims)
			}
		})
	}
}

func TestVerifyRefusesAttacks(t *testing.T) {
	k := fixtureKeys(t)
	mp := mainProvider(t)
	v := newVerifier(t, []auth.Provider{mp, hsProvider(t)}, auth.Options{})
	valid := sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(nil))
	parts := strings.Split(valid, ".")

	rsaDER, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})
	payload := mustJSON(t, claims(nil))
	tamperedPayload := strings.Split(sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"sub": "mallory"})), ".")[1]

	tests := []struct {
		name  string
		token string
		want  auth.Reason
	}{
		{"alg none, empty signature", rawToken(`{"alg":"none","typ":"JWT"}`, payload, ""), auth.ReasonAlgorithm},
		{"alg none with kid", rawToken(`{"alg":"none","kid":"ec1"}`, payload, ""), auth.ReasonAlgorithm},
		{"alg None capitalised", rawToken(`{"alg":"None"}`, payload, ""), auth.ReasonAlgorithm},
		{"HS256 signed with RSA public key PEM", sign(t, jwt.SigningMethodHS256, rsaPEM, "rsa1", claims(nil)), auth.ReasonAlgorithm},
		{"HS256 signed with RSA public key DER", sign(t, jwt.SigningMethodHS256, rsaDER, "rsa1", claims(nil)), auth.ReasonAlgorithm},
		{"HS256 signed with RSA PEM, no kid", sign(t, jwt.SigningMethodHS256, rsaPEM, "", claims(nil)), auth.ReasonAlgorithm},
		{"ES256 header naming an RSA key", sign(t, jwt.SigningMethodES256, k.ec256, "rsa1", claims(nil)), auth.ReasonAlgorithm},
		{"ES384 header naming a P-256 key", sign(t, jwt.SigningMethodES384, k.ec384, "ec1", claims(nil)), auth.ReasonAlgorithm},
		{"RS256 with a kid pinned to PS256", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-pss", claims(nil)), auth.ReasonAlgorithm},
		{"RS512 not in allow-list", sign(t, jwt.SigningMethodRS512, k.rsa, "rsa1", claims(nil)), auth.ReasonAlgorithm},
		{"unknown alg name", rawToken(`{"alg":"HS1024","kid":"ec1"}`, payload, "c2ln"), auth.ReasonAlgorithm},
		{"expired", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"exp": t0.Add(-time.Hour).Unix()})), auth.ReasonExpired},
		{"expired exactly at exp+skew", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"exp": t0.Add(-30 * time.Second).Unix()})), auth.ReasonExpired},
		{"nbf in the future", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"nbf": t0.Add(time.Minute).Unix()})), auth.ReasonNotYetValid},
		{"wrong issuer", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"iss": "https://evil.example"})), auth.ReasonIssuer},
		{"missing issuer", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"iss": nil})), auth.ReasonIssuer},
		{"HS token claiming the main issuer", sign(t, jwt.SigningMethodHS256, k.secret, "", claims(nil)), auth.ReasonAlgorithm},
		{"wrong audience", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"aud": "billing-api"})), auth.ReasonAudience},
		{"audience array without ours", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"aud": []string{"a", "b"}})), auth.ReasonAudience},
		{"missing audience", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"aud": nil})), auth.ReasonAudience},
		{"missing exp", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"exp": nil})), auth.ReasonMalformed},
		{"exp as string", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"exp": "2100-01-01"})), auth.ReasonMalformed},
		{"exp beyond year 9999", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"exp": 1e300})), auth.ReasonMalformed},
		{"nbf as string", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"nbf": "soon"})), auth.ReasonMalformed},
		{"sub not a string", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"sub": 42})), auth.ReasonMalformed},
		{"unknown kid", sign(t, jwt.SigningMethodES256, k.ec256, "nope", claims(nil)), auth.ReasonUnknownKey},
		{"kid not a string", rawToken(`{"alg":"ES256","kid":7}`, payload, parts[2]), auth.ReasonMalformed},
		{"signed by another key under a known kid", sign(t, jwt.SigningMethodES256, k.ec256b, "ec1", claims(nil)), auth.ReasonSignature},
		{"payload swapped, signature kept", parts[0] + "." + tamperedPayload + "." + parts[2], auth.ReasonSignature},
		{"signature from another token", parts[0] + "." + parts[1] + "." + strings.Split(sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"sub": "bob"})), ".")[2], auth.ReasonSignature},
		{"signature truncated by 2 chars", valid[:len(valid)-2], auth.ReasonSignature},
		{"signature truncated by 1 char (invalid base64 length)", valid[:len(valid)-1], auth.ReasonMalformed},
		{"signature removed", parts[0] + "." + parts[1], auth.ReasonMalformed},
		{"truncated inside payload", valid[:len(parts[0])+10], auth.ReasonMalformed},
		{"four segments", valid + ".x", auth.ReasonMalformed},
		{"bad base64 header", "!!!." + parts[1] + "." + parts[2], auth.ReasonMalformed},
		{"padded base64 header", parts[0] + "==." + parts[1] + "." + parts[2], auth.ReasonMalformed},
		{"bad base64 payload", parts[0] + ".%%%." + parts[2], auth.ReasonMalformed},
		{"header not JSON", rawToken(`not json`, payload, parts[2]), auth.ReasonMalformed},
		{"header JSON array", rawToken(`["ES256"]`, payload, parts[2]), auth.ReasonMalformed},
		{"payload JSON array", rawToken(`{"alg":"ES256","kid":"ec1"}`, `[1,2]`, parts[2]), auth.ReasonMalformed},
		{"crit header", signWithHeader(t, jwt.SigningMethodES256, k.ec256, map[string]any{"kid": "ec1", "crit": []string{"exp"}, "exp": 1}, claims(nil)), auth.ReasonMalformed},
		{"embedded jwk of the attacker's key", signWithHeader(t, jwt.SigningMethodES256, k.ec256b, map[string]any{"kid": "ec1", "jwk": map[string]any{"kty": "EC"}}, claims(nil)), auth.ReasonSignature},
		{"header without alg", rawToken(`{"kid":"ec1"}`, payload, parts[2]), auth.ReasonMalformed},
		{"empty token", "", auth.ReasonMalformed},
		{"16 KB token", parts[0] + "." + strings.Repeat("A", 16<<10) + "." + parts[2], auth.ReasonMalformed},
		{"dots only", "..", auth.ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, reason := v.Verify(context.Background(), tc.token)
			if reason != tc.want {
				t.Fatalf("reason %q, want %q", reason, tc.want)
			}
			if !reflect.DeepEqual(id, auth.Identity{}) {
				t.Errorf("refused token returned identity %+v", id)
			}
		})
	}
	if _, reason := v.Verify(context.Background(), valid); reason != auth.ReasonOK {
		t.Fatalf("the untampered token: %q", reason)
	}
	jku := signWithHeader(t, jwt.SigningMethodES256, k.ec256, map[string]any{"kid": "ec1", "jku": "https://evil.example/jwks"}, claims(nil))
	if _, reason := v.Verify(context.Background(), jku); reason != auth.ReasonOK {
		t.Fatalf("a jku header is ignored, the configured key verifies: %q", reason)
	}
}

func TestVerifyClockSkew(t *testing.T) {
	k := fixtureKeys(t)
	v := newVerifier(t, []auth.Provider{mainProvider(t)}, auth.Options{})
	tests := []struct {
		name string
		c    map[string]any
		want auth.Reason
	}{
		{"expired 29s ago, inside 30s skew", map[string]any{"exp": t0.Add(-29 * time.Second).Unix()}, auth.ReasonOK},
		{"expired 31s ago", map[string]any{"exp": t0.Add(-31 * time.Second).Unix()}, auth.ReasonExpired},
		{"nbf 29s ahead, inside skew", map[string]any{"nbf": t0.Add(29 * time.Second).Unix()}, auth.ReasonOK},
		{"nbf 31s ahead", map[string]any{"nbf": t0.Add(31 * time.Second).Unix()}, auth.ReasonNotYetValid},
		{"iat in the future is ignored", map[string]any{"iat": t0.Add(time.Hour).Unix()}, auth.ReasonOK},
		{"fractional exp", map[string]any{"exp": float64(t0.Unix()) + 60.5}, auth.ReasonOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, reason := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(tc.c)))
			if reason != tc.want {
				t.Fatalf("reason %q, want %q", reason, tc.want)
			}
		})
	}
}

func TestVerifyAudienceArray(t *testing.T) {
	k := fixtureKeys(t)
	p := mainProvider(t)
	p.Audiences = []string{"other", testAudience}
	v := newVerifier(t, []auth.Provider{p}, auth.Options{})
	tok := sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"aud": []string{"x", testAudience}}))
	if _, reason := v.Verify(context.Background(), tok); reason != auth.ReasonOK {
		t.Fatalf("aud array containing ours: %q", reason)
	}
}

func TestVerifyScopes(t *testing.T) {
	k := fixtureKeys(t)
	custom := mainProvider(t)
	custom.ScopeClaim = "permissions"
	vDefault := newVerifier(t, []auth.Provider{mainProvider(t)}, auth.Options{})
	vCustom := newVerifier(t, []auth.Provider{custom}, auth.Options{})
	tests := []struct {
		name string
		v    *auth.Verifier
		c    map[string]any
		want []string
	}{
		{"scope string", vDefault, map[string]any{"scope": "read  write admin"}, []string{"read", "write", "admin"}},
		{"scope array", vDefault, map[string]any{"scope": []string{"read", "write"}}, []string{"read", "write"}},
		{"scp array when scope absent", vDefault, map[string]any{"scope": nil, "scp": []any{"read", 5, "admin"}}, []string{"read", "admin"}},
		{"scp string when scope absent", vDefault, map[string]any{"scope": nil, "scp": "read"}, []string{"read"}},
		{"scope wins over scp", vDefault, map[string]any{"scope": "a", "scp": []string{"b"}}, []string{"a"}},
		{"no scopes", vDefault, map[string]any{"scope": nil}, nil},
		{"custom claim", vCustom, map[string]any{"permissions": []string{"x"}}, []string{"x"}},
		{"custom claim absent falls back to scp", vCustom, map[string]any{"scp": []string{"y"}}, []string{"y"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, reason := tc.v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(tc.c)))
			if reason != auth.ReasonOK {
				t.Fatalf("reason %q", reason)
			}
			if len(id.Scopes) != len(tc.want) || (len(tc.want) > 0 && !reflect.DeepEqual(id.Scopes, tc.want)) {
				t.Fatalf("scopes %q, want %q", id.Scopes, tc.want)
			}
		})
	}
}

func TestScopesFrom(t *testing.T) {
	tests := []struct {
		in   any
		want []string
	}{
		{"a b\tc", []string{"a", "b", "c"}},
		{"", []string{}},
		{[]any{"a", nil, "", "b"}, []string{"a", "b"}},
		{[]string{"a", ""}, []string{"a"}},
		{42.0, nil},
		{nil, nil},
		{map[string]any{"a": true}, nil},
	}
	for _, tc := range tests {
		got := auth.ScopesFrom(tc.in)
		if len(got) != len(tc.want) || (len(got) > 0 && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("ScopesFrom(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestVerifyCache(t *testing.T) {
	k := fixtureKeys(t)
	clk := newClock()
	v := newVerifier(t, []auth.Provider{mainProvider(t)}, auth.Options{Now: clk.Now, CacheSize: 8})
	tok := sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(nil))

	first, reason := v.Verify(context.Background(), tok)
	if reason != auth.ReasonOK {
		t.Fatalf("first: %q", reason)
	}
	if n := auth.CacheLen(v); n != 1 {
		t.Fatalf("cache holds %d entries after one valid token", n)
	}
	second, reason := v.Verify(context.Background(), tok)
	if reason != auth.ReasonOK || !reflect.DeepEqual(first, second) {
		t.Fatalf("cache hit: %q %+v", reason, second)
	}

	// Invalid tokens are never cached.
	bad := sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"aud": "x"}))
	v.Verify(context.Background(), bad)
	if n := auth.CacheLen(v); n != 1 {
		t.Fatalf("cache holds %d entries after an invalid token", n)
	}

	// A cached token past exp+skew is refused.
	clk.Advance(10*time.Minute + 29*time.Second)
	if _, reason := v.Verify(context.Background(), tok); reason != auth.ReasonOK {
		t.Fatalf("inside skew: %q", reason)
	}
	clk.Advance(time.Second)
	if _, reason := v.Verify(context.Background(), tok); reason != auth.ReasonExpired {
		t.Fatalf("cached token after expiry: %q, want %q", reason, auth.ReasonExpired)
	}

	// The cache is bounded.
	for i := 0; i < 50; i++ {
		tk := sign(t, jwt.SigningMethodEdDSA, k.ed, "ed1", claims(map[string]any{"jti": i, "exp": clk.Now().Add(time.Hour).Unix()}))
		if _, reason := v.Verify(context.Background(), tk); reason != auth.ReasonOK {
			t.Fatalf("token %d: %q", i, reason)
		}
		if n := auth.CacheLen(v); n > 8 {
			t.Fatalf("cache grew to %d entries, bound 8", n)
		}
	}
}

func TestVerifyCacheDisabled(t *testing.T) {
	k := fixtureKeys(t)
	v := newVerifier(t, []auth.Provider{mainProvider(t)}, auth.Options{CacheSize: -1})
	tok := sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(nil))
	for i := 0; i < 2; i++ {
		if _, reason := v.Verify(context.Background(), tok); reason != auth.ReasonOK {
			t.Fatalf("verify %d: %q", i, reason)
		}
	}
	if n := auth.CacheLen(v); n != 0 {
		t.Fatalf("disabled cache holds %d", n)
	}
}

func TestVerifyMaxTokenBytes(t *testing.T) {
	k := fixtureKeys(t)
	tok := sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(nil))
	v := newVerifier(t, []auth.Provider{mainProvider(t)}, auth.Options{MaxTokenBytes: len(tok) - 1})
	if _, reason := v.Verify(context.Background(), tok); reason != auth.ReasonMalformed {
		t.Fatalf("token one byte over the limit: %q", reason)
	}
}

func TestNewVerifierRejectsBadConfig(t *testing.T) {
	k := fixtureKeys(t)
	good := mainProvider(t)
	with := func(change func(p *auth.Provider)) []auth.Provider {
		p := good
		change(&p)
		return []auth.Provider{p}
	}
	privateJWKS := `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`
	tests := []struct {
		name      string
		providers []auth.Provider
		wantErr   string
	}{
		{"no providers", nil, "no JWT providers"},
		{"no name", with(func(p *auth.Provider) { p.Name = "" }), "name is required"},
		{"no issuer", with(func(p *auth.Provider) { p.Issuer = "" }), "issuer is required"},
		{"no audience", with(func(p *auth.Provider) { p.Audiences = nil }), "audience"},
		{"alg none", with(func(p *auth.Provider) { p.Algorithms = []string{"none"} }), `"none" is not supported`},
		{"empty allow-list", with(func(p *auth.Provider) { p.Algorithms = nil }), "allow-list is empty"},
		{"HS256 without secret", with(func(p *auth.Provider) { p.Algorithms = []string{"ES256", "HS256"} }), "needs a shared secret"},
		{"short secret", with(func(p *auth.Provider) {
			p.JWKSInline, p.Algorithms, p.Secret = "", []string{"HS256"}, []byte("short")
		}), "too short"},
		{"HS512 with a 32-byte secret", with(func(p *auth.Provider) {
			p.JWKSInline, p.Algorithms, p.Secret = "", []string{"HS512"}, k.secret
		}), "too short"},
		{"secret with ES256", with(func(p *auth.Provider) {
			p.JWKSInline, p.Algorithms, p.Secret = "", []string{"ES256"}, k.secret
		}), "cannot verify with a shared secret"},
		{"two key sources", with(func(p *auth.Provider) { p.JWKSURL = "https://x.example/jwks" }), "exactly one key source"},
		{"no key source", with(func(p *auth.Provider) { p.JWKSInline = "" }), "exactly one key source"},
		{"bad URL scheme", with(func(p *auth.Provider) { p.JWKSInline, p.JWKSURL = "", "file:///etc/jwks" }), "http(s) URL"},
		{"invalid inline JWKS", with(func(p *auth.Provider) { p.JWKSInline = "{" }), "jwks: decode"},
		{"private key in JWKS", with(func(p *auth.Provider) { p.JWKSInline = privateJWKS }), "private key material"},
		{"keys fit no allowed algorithm", with(func(p *auth.Provider) { p.Algorithms = []string{"ES512"} }), "no key in the set"},
		{"missing JWKS file", with(func(p *auth.Provider) { p.JWKSInline, p.JWKSFile = "", "/nonexistent/jwks.json" }), "read JWKS file"},
		{"negative skew", with(func(p *auth.Provider) { p.ClockSkew = -time.Second }), "negative clock skew"},
		{"duplicate issuer", []auth.Provider{good, func() auth.Provider { p := good; p.Name = "other"; return p }()}, "share issuer"},
		{"duplicate name", []auth.Provider{good, func() auth.Provider { p := hsProvider(t); p.Name = good.Name; return p }()}, "duplicate provider name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := auth.NewVerifier(context.Background(), tc.providers, auth.Options{})
			if err == nil {
				v.Close()
				t.Fatalf("no error, want one containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestJWKSFileProvider(t *testing.T) {
	k := fixtureKeys(t)
	path := t.TempDir() + "/jwks.json"
	if err := writeFile(path, jwksFor(t, map[string]crypto.PublicKey{"ec1": &k.ec256.PublicKey}, nil)); err != nil {
		t.Fatal(err)
	}
	p := mainProvider(t)
	p.JWKSInline, p.JWKSFile, p.Algorithms = "", path, []string{"ES256"}
	v := newVerifier(t, []auth.Provider{p}, auth.Options{})
	if _, reason := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec256, "", claims(nil))); reason != auth.ReasonOK {
		t.Fatalf("kid-less token against the only EC key: %q", reason)
	}
}

func TestVerifyKeySelectionWithoutKid(t *testing.T) {
	k := fixtureKeys(t)
	p := mainProvider(t)
	p.JWKSInline = jwksFor(t, map[string]crypto.PublicKey{
		"ec1":     &k.ec256.PublicKey,
		"ec2":     &k.ec256b.PublicKey,
		"rsa1":    &k.rsa.PublicKey,
		"rsa-pss": &k.rsa.PublicKey,
	}, map[string]string{"rsa-pss": "PS256"})
	v := newVerifier(t, []auth.Provider{p}, auth.Options{})
	tests := []struct {
		name  string
		token string
		want  auth.Reason
	}{
		{"ES256, two P-256 keys: ambiguous", sign(t, jwt.SigningMethodES256, k.ec256, "", claims(nil)), auth.ReasonUnknownKey},
		{"RS256: only rsa1 fits (rsa-pss is pinned to PS256)", sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(nil)), auth.ReasonOK},
		{"PS256: only rsa-pss fits", sign(t, jwt.SigningMethodPS256, k.rsa, "", claims(nil)), auth.ReasonOK},
		{"EdDSA: no Ed25519 key", sign(t, jwt.SigningMethodEdDSA, k.ed, "", claims(nil)), auth.ReasonUnknownKey},
		{"ES256 with kid ec2", sign(t, jwt.SigningMethodES256, k.ec256b, "ec2", claims(nil)), auth.ReasonOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, reason := v.Verify(context.Background(), tc.token); reason != tc.want {
				t.Fatalf("reason %q, want %q", reason, tc.want)
			}
		})
	}
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

func TestCloseIsIdempotentAndVerifyStillWorks(t *testing.T) {
	k := fixtureKeys(t)
	v, err := auth.NewVerifier(context.Background(), []auth.Provider{mainProvider(t)}, auth.Options{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	v.Close()
	if _, reason := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(nil))); reason != auth.ReasonOK {
		t.Fatalf("after Close: %q", reason)
	}
}
