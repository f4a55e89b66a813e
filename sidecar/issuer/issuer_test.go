package issuer_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/internal/clocktest"
	"github.com/contentguard/contentguard/internal/redistest"
	"github.com/contentguard/contentguard/sidecar/issuer"
)

// check asks an engine on p's policy what it does with a bearer token.
func check(t *testing.T, e *edge.Engine, method, path, token string) edge.Decision {
	t.Helper()
	return e.Check(context.Background(), edge.Request{
		Method: method, Path: path, Peer: netip.MustParseAddr("192.0.2.1"),
		Header: http.Header{"Authorization": {"Bearer " + token}},
	})
}

// TestIssuedTokensPassTheSamePolicysEngine: a token from the issuer is
// accepted by the engine built from the same policy, with its scopes.
func TestIssuedTokensPassTheSamePolicysEngine(t *testing.T) {
	p := writePolicy(t, "{file: keys/signing.pem}")
	iss := newIssuer(t, p, nil, nil)
	e, err := edge.New(context.Background(), p, edge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	a := post(t, iss.Handler(), tokenPath, passwordForm("alice", alicePassword, ""))
	if a.Status != 200 || a.str("token_type") != "Bearer" || a.str("scope") != "read write" || a.str("refresh_token") == "" {
		t.Fatalf("password grant: %d %s", a.Status, a.Raw)
	}
	if a.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", a.Header.Get("Cache-Control"))
	}
	if got := a.Body["expires_in"].(float64); got != 900 {
		t.Errorf("expires_in %v, want 900", got)
	}
	d := check(t, e, "POST", "/api/v1/analyze", a.str("access_token"))
	if !d.Allow || d.Subject != "alice" {
		t.Fatalf("engine refused the issued token: %d %s %s", d.Status, d.Reason, d.Body)
	}
	var scopes string
	for _, h := range d.UpstreamHeaders {
		if h[0] == "X-Auth-Scopes" {
			scopes = h[1]
		}
	}
	if scopes != "read write" {
		t.Errorf("forwarded scopes %q", scopes)
	}

	// The claims are those of RFC 9068, signed with the key's thumbprint.
	tok, _, err := jwt.NewParser().ParseUnverified(a.str("access_token"), jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["kid"] != iss.KeyID() || tok.Header["alg"] != "ES256" {
		t.Errorf("header %v, want kid %s, ES256", tok.Header, iss.KeyID())
	}
	c := tok.Claims.(jwt.MapClaims)
	for _, k := range []string{"iss", "aud", "sub", "scope", "iat", "nbf", "exp", "jti"} {
		if _, ok := c[k]; !ok {
			t.Errorf("claim %s missing: %v", k, c)
		}
	}

	// A narrower scope gives a token the write route refuses with 403.
	b := post(t, iss.Handler(), tokenPath, passwordForm("alice", alicePassword, "read"))
	if b.Status != 200 || b.str("scope") != "read" {
		t.Fatalf("scope=read: %d %s", b.Status, b.Raw)
	}
	if d := check(t, e, "POST", "/api/v1/analyze", b.str("access_token")); d.Status != 403 || d.Reason != edge.ReasonInsufficientScope {
		t.Errorf("read-only token on the write route: %d %s", d.Status, d.Reason)
	}
	if d := check(t, e, "GET", "/api/v1/jobs/1", b.str("access_token")); !d.Allow {
		t.Errorf("read-only token on the read route: %d %s", d.Status, d.Reason)
	}
}

func TestPasswordGrantRefusals(t *testing.T) {
	p := writePolicy(t, "{file: keys/signing.pem}")
	h := newIssuer(t, p, nil, nil).Handler()
	wrong := post(t, h, tokenPath, passwordForm("alice", "nope", ""))
	unknown := post(t, h, tokenPath, passwordForm("mallory", alicePassword, ""))
	for name, a := range map[string]answer{"wrong password": wrong, "unknown user": unknown} {
		if a.Status != 400 || a.str("error") != "invalid_grant" {
			t.Errorf("%s: %d %s", name, a.Status, a.Raw)
		}
	}
	// An unknown user and a wrong password are indistinguishable.
	if wrong.Raw != unknown.Raw {
		t.Errorf("answers differ:\n%s\n%s", wrong.Raw, unknown.Raw)
	}
	if a := post(t, h, tokenPath, passwordForm("bob", alicePassword, "read write")); a.Status != 400 || a.str("error") != "invalid_scope" {
		t.Errorf("scope beyond the user's: %d %s", a.Status, a.Raw)
	}
	if a := post(t, h, tokenPath, passwordForm("alice", alicePassword, `read "x`)); a.Status != 400 || a.str("error") != "invalid_scope" {
		t.Errorf("malformed scope: %d %s", a.Status, a.Raw)
	}
	if a := post(t, h, tokenPath, url.Values{"grant_type": {"password"}, "username": {"alice"}}); a.str("error") != "invalid_request" {
		t.Errorf("no password: %d %s", a.Status, a.Raw)
	}
}

func TestClientCredentials(t *testing.T) {
	p := writePolicy(t, "{file: keys/signing.pem}")
	iss := newIssuer(t, p, nil, nil)
	h := iss.Handler()
	grant := url.Values{"grant_type": {"client_credentials"}}

	a := post(t, h, tokenPath, grant, "reporting", reportingSecret)
	if a.Status != 200 || a.str("scope") != "read" || a.str("refresh_token") != "" {
		t.Fatalf("Basic client credentials: %d %s", a.Status, a.Raw)
	}
	tok, _, _ := jwt.NewParser().ParseUnverified(a.str("access_token"), jwt.MapClaims{})
	if c := tok.Claims.(jwt.MapClaims); c["sub"] != "reporting" || c["client_id"] != "reporting" {
		t.Errorf("claims %v", c)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"reporting"}, "client_secret": {reportingSecret}}
	if a := post(t, h, tokenPath, form); a.Status != 200 {
		t.Errorf("form client credentials: %d %s", a.Status, a.Raw)
	}

	bad := post(t, h, tokenPath, grant, "reporting", "wrong")
	if bad.Status != 401 || bad.str("error") != "invalid_client" || !strings.HasPrefix(bad.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("bad Basic secret: %d %v %s", bad.Status, bad.Header, bad.Raw)
	}
	badForm := url.Values{"grant_type": {"client_credentials"}, "client_id": {"nobody"}, "client_secret": {"x"}}
	if a := post(t, h, tokenPath, badForm); a.Status != 400 || a.str("error") != "invalid_client" || a.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("bad form secret: %d %s", a.Status, a.Raw)
	}
	if a := post(t, h, tokenPath, url.Values{"grant_type": {"client_credentials"}, "client_secret": {reportingSecret}}, "reporting", reportingSecret); a.str("error") != "invalid_request" {
		t.Errorf("two authentication methods: %d %s", a.Status, a.Raw)
	}
	if a := post(t, h, tokenPath, url.Values{"grant_type": {"client_credentials"}, "scope": {"write"}}, "reporting", reportingSecret); a.str("error") != "invalid_scope" {
		t.Errorf("client asks beyond its scopes: %d %s", a.Status, a.Raw)
	}
}

func TestMalformedRequests(t *testing.T) {
	p := writePolicy(t, "{file: keys/signing.pem}")
	h := newIssuer(t, p, nil, nil).Handler()
	cases := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}{
		{"GET", func() *http.Request { return httptest.NewRequest("GET", tokenPath, nil) }, 405, "invalid_request"},
		{"JSON body", func() *http.Request {
			r := httptest.NewRequest("POST", tokenPath, strings.NewReader(`{"grant_type":"password"}`))
			r.Header.Set("Content-Type", "application/json")
			return r
		}, 400, "invalid_request"},
		{"repeated parameter", func() *http.Request { return form("grant_type=password&grant_type=client_credentials") }, 400, "invalid_request"},
		{"no grant type", func() *http.Request { return form("username=alice") }, 400, "invalid_request"},
		{"unsupported grant", func() *http.Request { return form("grant_type=authorization_code&code=x") }, 400, "unsupported_grant_type"},
		{"password in the query", func() *http.Request {
			r := form("grant_type=password&username=alice")
			r.URL.RawQuery = "password=x"
			return r
		}, 400, "invalid_request"},
		{"huge body", func() *http.Request {
			return form("grant_type=password&password=" + strings.Repeat("a", issuer.MaxFormBytes))
		}, 413, "invalid_request"},
		{"long parameter", func() *http.Request { return form("grant_type=password&password=" + strings.Repeat("a", 5000)) }, 400, "invalid_request"},
		{"bad Basic", func() *http.Request {
			r := form("grant_type=client_credentials")
			r.Header.Set("Authorization", "Basic !!!")
			return r
		}, 401, "invalid_client"},
		{"bad form encoding", func() *http.Request { return form("grant_type=%zz") }, 400, "invalid_request"},
	}
	for _, c := range cases {
		a := serve(t, h, c.req())
		if a.Status != c.status || a.str("error") != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, a.Status, a.Raw, c.status, c.code)
		}
	}
}

func form(body string) *http.Request {
	r := httptest.NewRequest("POST", tokenPath, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func TestDocuments(t *testing.T) {
	p := writePolicy(t, "{file: keys/signing.pem}")
	iss := newIssuer(t, p, nil, nil)
	h := iss.Handler()
	j := serve(t, h, httptest.NewRequest("GET", issuer.JWKSPath, nil))
	keys, err := auth.ParseJWKS([]byte(j.Raw))
	if j.Status != 200 || err != nil || len(keys) != 1 {
		t.Fatalf("JWKS: %d %v %s", j.Status, err, j.Raw)
	}
	if _, ok := keys[iss.KeyID()]; !ok {
		t.Errorf("JWKS lacks kid %s", iss.KeyID())
	}
	d := serve(t, h, httptest.NewRequest("GET", issuer.DiscoveryPath, nil))
	if d.Status != 200 || d.str("issuer") != testIssuer || d.str("token_endpoint") != testIssuer+tokenPath ||
		d.str("jwks_uri") != testIssuer+issuer.JWKSPath || d.str("revocation_endpoint") != testIssuer+"/api/v1/auth/revoke" {
		t.Fatalf("discovery: %d %s", d.Status, d.Raw)
	}
	grants, _ := d.Body["grant_types_supported"].([]any)
	if len(grants) != 3 {
		t.Errorf("grant types %v", grants)
	}
	want := []string{tokenPath, "/api/v1/auth/revoke", issuer.JWKSPath, issuer.DiscoveryPath}
	if got := iss.Paths(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Paths %v, want %v", got, want)
	}
	if a := serve(t, h, httptest.NewRequest("GET", "/.well-known/./x/../jwks.json", nil)); a.Status != 200 {
		t.Errorf("un-normalised JWKS path: %d", a.Status)
	}
	if a := serve(t, h, httptest.NewRequest("GET", "/.well-known/other", nil)); a.Status != 404 {
		t.Errorf("unknown path: %d", a.Status)
	}
	if a := serve(t, h, httptest.NewRequest("POST", issuer.JWKSPath, nil)); a.Status != 405 {
		t.Errorf("POST JWKS: %d", a.Status)
	}
}

// TestEphemeralKey: without signingKey the issuer signs with a generated key
// and publishes it; the file-based provider does not know it.
func TestEphemeralKey(t *testing.T) {
	p := writePolicy(t, "")
	iss := newIssuer(t, p, nil, nil)
	if !iss.Ephemeral() {
		t.Fatal("want an ephemeral key")
	}
	a := post(t, iss.Handler(), tokenPath, passwordForm("alice", alicePassword, ""))
	keys, err := auth.ParseJWKS(iss.JWKS())
	if a.Status != 200 || err != nil || keys[iss.KeyID()].Key == nil {
		t.Fatalf("%d %s %v", a.Status, a.Raw, err)
	}
	e, err := edge.New(context.Background(), p, edge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if d := check(t, e, "POST", "/api/v1/analyze", a.str("access_token")); d.Allow {
		t.Error("a provider with another key accepted the ephemeral key's token")
	}
}

func TestSigningKeyErrors(t *testing.T) {
	for _, key := range []string{"{file: keys/missing.pem}", "{inline: not-a-pem}", `{inline: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}`} {
		p := writePolicy(t, key)
		if _, err := issuer.New(context.Background(), p, issuer.Options{Logger: quietLogger()}); err == nil {
			t.Errorf("signingKey %s: want an error", key)
		}
	}
	if _, err := issuer.New(context.Background(), nil, issuer.Options{}); err == nil {
		t.Error("nil policy: want an error")
	}
}

// storeKinds runs f against a memory store and a Redis store.
func storeKinds(t *testing.T, f func(t *testing.T, newStore func() issuer.Store)) {
	t.Run("memory", func(t *testing.T) {
		f(t, func() issuer.Store { return issuer.NewMemory(0) })
	})
	t.Run("redis", func(t *testing.T) {
		addr := redistest.Start(t)
		f(t, func() issuer.Store {
			c := redis.NewClient(&redis.Options{Addr: addr})
			t.Cleanup(func() { c.Close() })
			return issuer.NewRedis(c, "")
		})
	})
}

func TestRefreshRotationAndReuse(t *testing.T) {
	storeKinds(t, func(t *testing.T, newStore func() issuer.Store) {
		p := writePolicy(t, "{file: keys/signing.pem}")
		h := newIssuer(t, p, newStore(), nil).Handler()
		first := post(t, h, tokenPath, passwordForm("alice", alicePassword, "")).str("refresh_token")
		second := post(t, h, tokenPath, refreshForm(first))
		if second.Status != 200 || second.str("refresh_token") == "" || second.str("refresh_token") == first || second.str("scope") != "read write" {
			t.Fatalf("rotation: %d %s", second.Status, second.Raw)
		}
		third := post(t, h, tokenPath, refreshForm(second.str("refresh_token")))
		if third.Status != 200 {
			t.Fatalf("second rotation: %d %s", third.Status, third.Raw)
		}
		// A narrower scope on refresh.
		fourth := post(t, h, tokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {third.str("refresh_token")}, "scope": {"read"}})
		if fourth.Status != 200 || fourth.str("scope") != "read" {
			t.Fatalf("narrowed refresh: %d %s", fourth.Status, fourth.Raw)
		}
		// Replaying the first (spent) token revokes the family: even the
		// newest token is dead now.
		if a := post(t, h, tokenPath, refreshForm(first)); a.Status != 400 || a.str("error") != "invalid_grant" {
			t.Fatalf("reuse: %d %s", a.Status, a.Raw)
		}
		if a := post(t, h, tokenPath, refreshForm(fourth.str("refresh_token"))); a.str("error") != "invalid_grant" {
			t.Fatalf("descendant after reuse: %d %s", a.Status, a.Raw)
		}
		// Another session of the same user is untouched.
		other := post(t, h, tokenPath, passwordForm("alice", alicePassword, "")).str("refresh_token")
		if a := post(t, h, tokenPath, refreshForm(other)); a.Status != 200 {
			t.Fatalf("unrelated family: %d %s", a.Status, a.Raw)
		}
		if a := post(t, h, tokenPath, refreshForm("never-issued")); a.str("error") != "invalid_grant" {
			t.Errorf("unknown token: %d %s", a.Status, a.Raw)
		}
	})
}

func TestRefreshExpiry(t *testing.T) {
	storeKinds(t, func(t *testing.T, newStore func() issuer.Store) {
		p := writePolicy(t, "{file: keys/signing.pem}")
		c := clocktest.New(time.Now())
		h := newIssuer(t, p, newStore(), c.Now).Handler()
		rt := post(t, h, tokenPath, passwordForm("alice", alicePassword, "")).str("refresh_token")
		c.Advance(59 * time.Minute) // refreshTTL is 1h
		next := post(t, h, tokenPath, refreshForm(rt))
		if next.Status != 200 {
			t.Fatalf("before expiry: %d %s", next.Status, next.Raw)
		}
		c.Advance(time.Hour) // the rotated token got a fresh hour, now spent too
		if a := post(t, h, tokenPath, refreshForm(next.str("refresh_token"))); a.Status != 400 || a.str("error") != "invalid_grant" {
			t.Fatalf("after expiry: %d %s", a.Status, a.Raw)
		}
	})
}

func TestRevoke(t *testing.T) {
	storeKinds(t, func(t *testing.T, newStore func() issuer.Store) {
		p := writePolicy(t, "{file: keys/signing.pem}")
		h := newIssuer(t, p, newStore(), nil).Handler()
		first := post(t, h, tokenPath, passwordForm("alice", alicePassword, "")).str("refresh_token")
		second := post(t, h, tokenPath, refreshForm(first)).str("refresh_token")
		// Revoking any token of the family ends the session.
		if a := post(t, h, "/api/v1/auth/revoke", url.Values{"token": {first}}); a.Status != 200 || a.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("revoke: %d %s", a.Status, a.Raw)
		}
		if a := post(t, h, tokenPath, refreshForm(second)); a.str("error") != "invalid_grant" {
			t.Fatalf("refresh after revoke: %d %s", a.Status, a.Raw)
		}
		// Unknown tokens and access tokens: 200 all the same (RFC 7009).
		if a := post(t, h, "/api/v1/auth/revoke", url.Values{"token": {"unknown"}, "token_type_hint": {"access_token"}}); a.Status != 200 {
			t.Errorf("revoke unknown: %d %s", a.Status, a.Raw)
		}
		if a := post(t, h, "/api/v1/auth/revoke", url.Values{}); a.Status != 400 || a.str("error") != "invalid_request" {
			t.Errorf("revoke without token: %d %s", a.Status, a.Raw)
		}
	})
}

// TestConcurrentRotationSpendsOnce: racing rotations of one token yield
// one success; the losers are reuse, so the family ends revoked.
func TestConcurrentRotationSpendsOnce(t *testing.T) {
	storeKinds(t, func(t *testing.T, newStore func() issuer.Store) {
		store := newStore()
		now := time.Now()
		old := issuer.HashToken("old")
		if err := store.Create(context.Background(), old, issuer.Record{Family: "f1", Subject: "alice", Kind: "user", Expires: now.Add(time.Hour)}, now); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		ok, reused := 0, 0
		var wg sync.WaitGroup
		for n := 0; n < 16; n++ {
			wg.Add(1)
			go func(n int) {
				defer wg.Done()
				_, err := store.Rotate(context.Background(), old, issuer.HashToken(string(rune('a'+n))), now.Add(time.Hour), now)
				mu.Lock()
				defer mu.Unlock()
				switch err {
				case nil:
					ok++
				case issuer.ErrReused, issuer.ErrInvalidToken:
					reused++
				default:
					t.Error(err)
				}
			}(n)
		}
		wg.Wait()
		if ok != 1 || reused != 15 {
			t.Fatalf("%d successes, %d refusals; want 1 and 15", ok, reused)
		}
	})
}

// TestReuseAcrossInstancesSharingRedis: two issuers (two sidecar replicas)
// on one Redis see each other's rotations and revocations.
func TestReuseAcrossInstancesSharingRedis(t *testing.T) {
	addr := redistest.Start(t)
	p := writePolicy(t, "{file: keys/signing.pem}")
	newStore := func() issuer.Store {
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { c.Close() })
		return issuer.NewRedis(c, "")
	}
	a := newIssuer(t, p, newStore(), nil).Handler()
	b := newIssuer(t, p, newStore(), nil).Handler()
	first := post(t, a, tokenPath, passwordForm("alice", alicePassword, "")).str("refresh_token")
	second := post(t, b, tokenPath, refreshForm(first))
	if second.Status != 200 {
		t.Fatalf("rotate on B a token issued by A: %d %s", second.Status, second.Raw)
	}
	if r := post(t, a, tokenPath, refreshForm(first)); r.str("error") != "invalid_grant" {
		t.Fatalf("reuse on A of a token B spent: %d %s", r.Status, r.Raw)
	}
	if r := post(t, b, tokenPath, refreshForm(second.str("refresh_token"))); r.str("error") != "invalid_grant" {
		t.Fatalf("B's descendant after reuse on A: %d %s", r.Status, r.Raw)
	}
}

func TestRedisStoreErrorIsUnavailable(t *testing.T) {
	p := writePolicy(t, "{file: keys/signing.pem}")
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	h := newIssuer(t, p, issuer.NewRedis(c, ""), nil).Handler()
	if a := post(t, h, tokenPath, passwordForm("alice", alicePassword, "")); a.Status != 503 || a.str("error") != "temporarily_unavailable" {
		t.Fatalf("password grant with Redis down: %d %s", a.Status, a.Raw)
	}
	if a := post(t, h, tokenPath, refreshForm("x")); a.Status != 503 {
		t.Fatalf("refresh with Redis down: %d %s", a.Status, a.Raw)
	}
}

func TestMemoryStoreIsBounded(t *testing.T) {
	m := issuer.NewMemory(3)
	now := time.Now()
	ctx := context.Background()
	for n := 0; n < 3; n++ {
		_ = m.Create(ctx, issuer.HashToken(string(rune('a'+n))), issuer.Record{Family: string(rune('a' + n)), Expires: now.Add(time.Duration(n+1) * time.Minute)}, now)
	}
	// Two minutes on, "a" has expired: it goes first, nothing is evicted.
	later := now.Add(90 * time.Second)
	_ = m.Create(ctx, issuer.HashToken("d"), issuer.Record{Family: "d", Expires: later.Add(time.Hour)}, later)
	if m.Len() != 3 || m.Evicted() != 0 {
		t.Fatalf("len %d evicted %d, want 3 and 0", m.Len(), m.Evicted())
	}
	if _, err := m.Rotate(ctx, issuer.HashToken("a"), issuer.HashToken("x"), later.Add(time.Hour), later); err != issuer.ErrInvalidToken {
		t.Fatalf("expired token: %v", err)
	}
	// Full of live tokens: the oldest live one is evicted.
	_ = m.Create(ctx, issuer.HashToken("e"), issuer.Record{Family: "e", Expires: later.Add(time.Hour)}, later)
	if m.Len() != 3 || m.Evicted() != 1 {
		t.Fatalf("len %d evicted %d, want 3 and 1", m.Len(), m.Evicted())
	}
	if _, err := m.Rotate(ctx, issuer.HashToken("b"), issuer.HashToken("y"), later.Add(time.Hour), later); err != issuer.ErrInvalidToken {
		t.Fatalf("evicted token: %v", err)
	}
}

// BenchmarkGrant: a client_credentials grant at bcrypt.MinCost (the cost of
// a real policy's hash dominates: ~50 ms at cost 10) and a refresh rotation
// on the memory store (ES256 signing dominates).
func BenchmarkGrant(b *testing.B) {
	p := writePolicy(b, "{file: keys/signing.pem}")
	iss := newIssuer(b, p, nil, nil)
	ctx := context.Background()
	b.Run("client_credentials", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, e := iss.Token(ctx, issuer.TokenRequest{GrantType: "client_credentials", ClientID: "reporting", ClientSecret: reportingSecret}); e != nil {
				b.Fatal(e)
			}
		}
	})
	b.Run("refresh_rotation", func(b *testing.B) {
		resp, e := iss.Token(ctx, issuer.TokenRequest{GrantType: "password", Username: "alice", Password: alicePassword})
		if e != nil {
			b.Fatal(e)
		}
		rt := resp.RefreshToken
		b.ReportAllocs()
		for b.Loop() {
			r, e := iss.Token(ctx, issuer.TokenRequest{GrantType: "refresh_token", RefreshToken: rt})
			if e != nil {
				b.Fatal(e)
			}
			rt = r.RefreshToken
		}
	})
}

func TestMetricsCountGrantsAndReuse(t *testing.T) {
	p := writePolicy(t, "{file: keys/signing.pem}")
	reg := prometheus.NewRegistry()
	iss, err := issuer.New(context.Background(), p, issuer.Options{Registry: reg, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	h := iss.Handler()
	rt := post(t, h, tokenPath, passwordForm("alice", alicePassword, "")).str("refresh_token")
	post(t, h, tokenPath, passwordForm("alice", "wrong", ""))
	post(t, h, tokenPath, refreshForm(rt))
	post(t, h, tokenPath, refreshForm(rt)) // reuse
	post(t, h, tokenPath, url.Values{"grant_type": {"made-up"}})
	want := `
# HELP refresh_token_reuse_total Spent refresh tokens presented again; each revoked its token family.
# TYPE refresh_token_reuse_total counter
refresh_token_reuse_total 1
# HELP token_grants_total Token requests, by grant type and result (ok or the OAuth2 error code).
# TYPE token_grants_total counter
token_grants_total{grant_type="other",result="unsupported_grant_type"} 1
token_grants_total{grant_type="password",result="invalid_grant"} 1
token_grants_total{grant_type="password",result="ok"} 1
token_grants_total{grant_type="refresh_token",result="invalid_grant"} 1
token_grants_total{grant_type="refresh_token",result="ok"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), issuer.MetricGrants, issuer.MetricRefreshReuse); err != nil {
		t.Fatal(err)
	}
	if _, err := issuer.New(context.Background(), p, issuer.Options{Registry: reg, Logger: quietLogger()}); err == nil {
		t.Error("registering twice must be an error")
	}
}
