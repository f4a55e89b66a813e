package auth_test

import (
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/traefik/yaegi/interp"

	"github.com/contentguard/contentguard/internal/yaegitest"
)

// yaegiProgram runs inside the interpreter: it builds a Verifier from an
// inline JWKS and verifies each token at the clock given with it, returning
// "reason|subject|scopes" per token.
const yaegiProgram = `package main

import (
	"context"
	"crypto"
	"strconv"
	"strings"
	"time"

	"github.com/contentguard/contentguard/edge/auth"
)

func Run(jwks string, tokens []string, clock []int64) []string {
	now := clock[0]
	v, err := auth.NewVerifier(context.Background(), []auth.Provider{{
		Name:       "main",
		Issuer:     "https://auth.contentguard.local",
		Audiences:  []string{"content-api"},
		Algorithms: []string{"ES256", "EdDSA"},
		JWKSInline: jwks,
		ClockSkew:  30 * time.Second,
	}}, auth.Options{Now: func() time.Time { return time.Unix(now, 0) }})
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	defer v.Close()
	out := make([]string, 0, len(tokens))
	for i := 0; i < len(tokens); i++ {
		now = clock[i]
		id, reason := v.Verify(context.Background(), tokens[i])
		out = append(out, string(reason)+"|"+id.Subject+"|"+strings.Join(id.Scopes, ","))
	}
	return out
}

// remote is the provider of the URL programs.
func remote(url string, refresh time.Duration) auth.Provider {
	return auth.Provider{
		Name:       "remote",
		Issuer:     "https://auth.contentguard.local",
		Audiences:  []string{"content-api"},
		Algorithms: []string{"ES256"},
		JWKSURL:    url,
		Refresh:    refresh,
	}
}

// RunURL verifies tokens against a JWKS URL with real time and a 1ns
// refetch interval, so an unknown kid always triggers a refetch.
func RunURL(url string, tokens []string) []string {
	v, err := auth.NewVerifier(context.Background(), []auth.Provider{remote(url, 0)},
		auth.Options{MinRefetchInterval: time.Nanosecond, Logf: func(format string, args ...any) {}})
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	out := make([]string, 0, len(tokens))
	for i := 0; i < len(tokens); i++ {
		id, reason := v.Verify(context.Background(), tokens[i])
		out = append(out, string(reason)+"|"+id.Subject)
	}
	// Not deferred: Yaegi runs a frame's deferred calls holding that frame's
	// lock, and the background goroutine Close waits for may be calling the
	// Logf literal created in this frame — which needs the same lock.
	v.Close()
	return out
}

// manualTimer is an auth.Timer the program fires itself; each Reset is
// reported on asked.
type manualTimer struct {
	f     func()
	asked chan time.Duration
}

func (m *manualTimer) Reset(d time.Duration) bool { m.asked <- d; return false }
func (m *manualTimer) Stop() bool                 { return false }

// RunBackoff drives the background loop against a failing URL with its own
// timer, returning the waits the loop asked for, the providers without keys
// and the number of failed fetches OnFetch reported.
func RunBackoff(url string) string {
	tm := &manualTimer{asked: make(chan time.Duration, 1)}
	failed := make(chan string, 10)
	v, err := auth.NewVerifier(context.Background(), []auth.Provider{remote(url, 5*time.Second)}, auth.Options{
		Logf:     func(format string, args ...any) {},
		NewTimer: func(f func()) auth.Timer { tm.f = f; return tm },
		OnFetch:  func(provider, u string, err error) { if err != nil { failed <- provider } },
	})
	if err != nil {
		return "error: " + err.Error()
	}
	out := ""
	for i := 0; i < 5; i++ {
		out += (<-tm.asked).String() + " "
		if i < 4 {
			tm.f()
		}
	}
	out += strings.Join(v.WithoutKeys(), ",")
	v.Close()
	close(failed)
	n := 0
	for range failed {
		n++
	}
	return out + " " + strconv.Itoa(n)
}

// NewBench returns a Verify loop over one token for benchmarks.
func NewBench(jwks string, cacheSize int, now int64) func(token string, n int) string {
	v, err := auth.NewVerifier(context.Background(), []auth.Provider{{
		Name:       "main",
		Issuer:     "https://auth.contentguard.local",
		Audiences:  []string{"content-api"},
		Algorithms: []string{"ES256"},
		JWKSInline: jwks,
	}}, auth.Options{CacheSize: cacheSize, Now: func() time.Time { return time.Unix(now, 0) }})
	if err != nil {
		return func(token string, n int) string { return "error: " + err.Error() }
	}
	return func(token string, n int) string {
		var reason auth.Reason
		for i := 0; i < n; i++ {
			_, reason = v.Verify(context.Background(), token)
		}
		return string(reason)
	}
}

func Keyring(hash string, presented string) string {
	sum, err := auth.ParseKeyHash(hash)
	if err != nil {
		return "error: " + err.Error()
	}
	ring := auth.NewKeyring([]auth.APIKey{{ID: "other", Scopes: []string{"x"}}, {ID: "importer", SHA256: sum, Scopes: []string{"read", "write"}}})
	k, ok := ring.Lookup(presented)
	if !ok {
		return "no match"
	}
	return k.ID + "|" + strings.Join(k.Scopes, ",")
}

// Republish parses a JWKS and renders its keys again (MarshalJWKS): the
// EC point codec both ways.
func Republish(jwks string) string {
	keys, err := auth.ParseJWKS([]byte(jwks))
	if err != nil {
		return "error: " + err.Error()
	}
	pub := map[string]crypto.PublicKey{}
	for kid, k := range keys {
		pub[kid] = k.Key
	}
	out, err := auth.MarshalJWKS(pub)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(out)
}

func Thumbprint(jwks string) string {
	keys, err := auth.ParseJWKS([]byte(jwks))
	if err != nil {
		return "error: " + err.Error()
	}
	tp, err := auth.Thumbprint(keys["ec1"].Key)
	if err != nil {
		return "error: " + err.Error()
	}
	return tp
}
`

// newYaegi interprets the package from a temporary GOPATH holding it and
// jwt/v5, with yaegiProgram loaded.
func newYaegi(tb testing.TB) *interp.Interpreter {
	tb.Helper()
	i := yaegitest.New(tb,
		yaegitest.Package("github.com/contentguard/contentguard/edge/auth", "."),
		yaegitest.Package("github.com/contentguard/contentguard/edge/internal/alarm", "../internal/alarm"),
		yaegitest.Package("github.com/contentguard/contentguard/internal/keyfile", "../../internal/keyfile"),
		yaegitest.Module("github.com/golang-jwt/jwt/v5"))
	yaegitest.Eval(tb, i, yaegiProgram)
	return i
}

// BenchmarkVerifyUnderYaegi measures Verify interpreted, as the Traefik
// plugin runs it: a cold ES256 verification and a cache hit.
func BenchmarkVerifyUnderYaegi(b *testing.B) {
	i := newYaegi(b)
	nb := yaegitest.Eval(b, i, "main.NewBench")
	newBench := nb.Interface().(func(string, int, int64) func(string, int) string)
	k := fixtureKeys(b)
	jwks := jwksFor(b, map[string]crypto.PublicKey{"ec1": &k.ec256.PublicKey}, nil)
	tok := benchToken(b, jwt.SigningMethodES256, k.ec256, "ec1")
	for _, bc := range []struct {
		name      string
		cacheSize int
	}{{"ES256Cold", -1}, {"Cached", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			run := newBench(jwks, bc.cacheSize, t0.Unix())
			if r := run(tok, 1); r != "" {
				b.Fatalf("interpreted Verify: %q", r)
			}
			b.ReportAllocs()
			b.ResetTimer()
			if r := run(tok, b.N); r != "" {
				b.Fatalf("interpreted Verify: %q", r)
			}
		})
	}
}

// TestUnderYaegi runs the package interpreted, as the Traefik plugin does:
// the package and its one dependency (jwt/v5) copied into a GOPATH, the
// standard library from yaegi's symbol tables.
func TestUnderYaegi(t *testing.T) {
	i := newYaegi(t)
	runValue := yaegitest.Eval(t, i, "main.Run")
	run, ok := runValue.Interface().(func(string, []string, []int64) []string)
	if !ok {
		t.Fatalf("main.Run has type %T", runValue.Interface())
	}

	k := fixtureKeys(t)
	jwks := jwksFor(t, map[string]crypto.PublicKey{"ec1": &k.ec256.PublicKey, "ed1": k.ed.Public()}, nil)
	valid := sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(nil))
	now, later := t0.Unix(), t0.Add(time.Hour).Unix()
	cases := []struct {
		name  string
		token string
		clock int64
		want  string
	}{
		{"valid ES256", valid, now, "|alice|read,write"},
		{"same token again (cache hit)", valid, now, "|alice|read,write"},
		{"cached token after expiry", valid, later, "token_expired||"},
		{"valid EdDSA, scp array", sign(t, jwt.SigningMethodEdDSA, k.ed, "ed1", claims(map[string]any{"scope": nil, "scp": []string{"admin"}})), now, "|alice|admin"},
		{"expired", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"exp": t0.Add(-time.Hour).Unix()})), now, "token_expired||"},
		{"nbf in the future", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"nbf": t0.Add(time.Hour).Unix()})), now, "token_not_yet_valid||"},
		{"alg none", rawToken(`{"alg":"none"}`, mustJSON(t, claims(nil)), ""), now, "algorithm_not_allowed||"},
		{"HS256 with the public key", sign(t, jwt.SigningMethodHS256, []byte(jwks), "ec1", claims(nil)), now, "algorithm_not_allowed||"},
		{"wrong audience", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"aud": "billing"})), now, "bad_audience||"},
		{"wrong issuer", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"iss": "https://evil"})), now, "bad_issuer||"},
		{"unknown kid", sign(t, jwt.SigningMethodES256, k.ec256, "zzz", claims(nil)), now, "unknown_kid||"},
		{"bad signature", sign(t, jwt.SigningMethodES256, k.ec256b, "ec1", claims(nil)), now, "bad_signature||"},
		{"missing exp", sign(t, jwt.SigningMethodES256, k.ec256, "ec1", claims(map[string]any{"exp": nil})), now, "token_malformed||"},
		{"garbage", "a.b.c", now, "token_malformed||"},
	}
	tokens := make([]string, len(cases))
	clock := make([]int64, len(cases))
	for j, c := range cases {
		tokens[j], clock[j] = c.token, c.clock
	}
	got := run(jwks, tokens, clock)
	if len(got) != len(cases) {
		t.Fatalf("interpreted Run returned %q", got)
	}
	for j, c := range cases {
		if got[j] != c.want {
			t.Errorf("%s: interpreted %q, want %q", c.name, got[j], c.want)
		}
	}

	// A JWKS URL provider: first fetch, a rotation picked up by an
	// unknown-kid refetch, the last good set kept through a 500.
	k2 := fixtureKeys(t)
	srv := newJWKSServer(t, jwksFor(t, map[string]crypto.PublicKey{"A": &k2.ec256.PublicKey}, nil))
	runURLValue := yaegitest.Eval(t, i, "main.RunURL")
	runURL := runURLValue.Interface().(func(string, []string) []string)
	farExp := claims(map[string]any{"exp": time.Now().Add(time.Hour).Unix()})
	tokA := sign(t, jwt.SigningMethodES256, k2.ec256, "A", farExp)
	tokB := sign(t, jwt.SigningMethodES256, k2.ec256b, "B", farExp)
	if got := runURL(srv.URL, []string{tokA, tokB}); strings.Join(got, " ") != "|alice unknown_kid|" {
		t.Errorf("interpreted URL provider before rotation: %q", got)
	}
	srv.set(200, jwksFor(t, map[string]crypto.PublicKey{"A": &k2.ec256.PublicKey, "B": &k2.ec256b.PublicKey}, nil))
	if got := runURL(srv.URL, []string{tokB, tokA}); strings.Join(got, " ") != "|alice |alice" {
		t.Errorf("interpreted URL provider after rotation: %q", got)
	}
	srv.set(500, "down")
	if got := runURL(srv.URL, []string{tokA}); strings.Join(got, " ") != "no_keys|" {
		t.Errorf("interpreted URL provider, server down from the start: %q", got)
	}

	// The background retry backs off from 1s to the refresh period, and
	// every failed fetch reaches OnFetch.
	runBackoff := yaegitest.Eval(t, i, "main.RunBackoff").Interface().(func(string) string)
	if got := runBackoff(srv.URL); got != "1s 2s 4s 5s 5s remote 5" {
		t.Errorf("interpreted backoff: %q", got)
	}

	keyringValue := yaegitest.Eval(t, i, "main.Keyring")
	keyring := keyringValue.Interface().(func(string, string) string)
	const testHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" // sha256("test")
	if got := keyring(testHash, "test"); got != "importer|read,write" {
		t.Errorf("interpreted keyring: %q", got)
	}
	if got := keyring(testHash, "nope"); got != "no match" {
		t.Errorf("interpreted keyring, wrong key: %q", got)
	}

	tpValue := yaegitest.Eval(t, i, "main.Thumbprint")
	want, err := thumbprintNative(&k.ec256.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := tpValue.Interface().(func(string) string)(jwks); got != want {
		t.Errorf("interpreted thumbprint %q, native %q", got, want)
	}

	// The EC point codec (ecpoint_yaegi.go interpreted, ecpoint.go
	// compiled) writes the points the compiled one wrote (jwks is the
	// compiled MarshalJWKS), and refuses the point the compiled one refuses
	// (TestParseJWKS, "point off the curve").
	republish := yaegitest.Eval(t, i, "main.Republish").Interface().(func(string) string)
	if got := republish(jwks); got != jwks {
		t.Errorf("interpreted JWKS round trip:\n%s\ncompiled:\n%s", got, jwks)
	}
	if got := republish(offCurve(t, jwks)); got != "error: jwks: key 0 (kid \"ec1\"): point is not on P-256" {
		t.Errorf("interpreted, a point off the curve: %q", got)
	}
}
