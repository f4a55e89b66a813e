package issuer_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar/issuer"
)

// Fixture credentials of the test policy.
const (
	alicePassword   = "correct horse battery staple"
	reportingSecret = "reporting secret"
	testIssuer      = "https://auth.contentguard.test"
)

var (
	hashOnce           sync.Once
	aliceHash, repHash string
)

func hashes(t testing.TB) (string, string) {
	hashOnce.Do(func() {
		a, err := bcrypt.GenerateFromPassword([]byte(alicePassword), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		r, err := bcrypt.GenerateFromPassword([]byte(reportingSecret), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		aliceHash, repHash = string(a), string(r)
	})
	return aliceHash, repHash
}

// writePolicy writes a policy whose JWT provider trusts the issuer's key
// (keys/signing.pem, keys/jwks.json) into a temp dir and loads it. extra is
// appended to the tokenIssuer block; signingKey "" leaves the key out.
func writePolicy(t testing.TB, signingKey string) *policy.Policy {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := auth.Thumbprint(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := auth.MarshalJWKS(map[string]crypto.PublicKey{kid: &key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "signing.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "jwks.json"), jwks, 0o644); err != nil {
		t.Fatal(err)
	}
	a, r := hashes(t)
	if signingKey != "" {
		signingKey = "    signingKey: " + signingKey + "\n"
	}
	doc := fmt.Sprintf(`apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: issuer-test}
spec:
  upstream: {url: "http://127.0.0.1:9", timeout: 5s}
  auth:
    jwt:
      providers:
        - name: local
          issuer: %[1]s
          audiences: [content-api]
          algorithms: [ES256]
          jwks: {file: keys/jwks.json}
          forwardClaims: {sub: X-Auth-Subject, scope: X-Auth-Scopes}
  tokenIssuer:
    path: /api/v1/auth/token
    issuer: %[1]s
    audience: content-api
%[4]s    accessTTL: 15m
    refreshTTL: 1h
    users:
      - {username: alice, bcrypt: "%[2]s", scopes: [read, write]}
      - {username: bob, bcrypt: "%[2]s", scopes: [read]}
    clients:
      - {id: reporting, bcrypt: "%[3]s", scopes: [read]}
  routes:
    - name: token
      match: {path: /api/v1/auth/token, methods: [POST]}
      auth: none
      rateLimit: {key: ip, rate: 5, per: 1h, burst: 5}
    - name: analyze
      match: {pathPrefix: /api/v1/, methods: [POST]}
      auth: {anyOf: [jwt], scopes: [write]}
    - name: read
      match: {pathPrefix: /api/v1/, methods: [GET]}
      auth: {anyOf: [jwt], scopes: [read]}
`, testIssuer, a, r, signingKey)
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := policyfile.Load(path)
	if err != nil {
		t.Fatalf("load test policy: %v", err)
	}
	return p
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newIssuer(t testing.TB, p *policy.Policy, store issuer.Store, now func() time.Time) *issuer.Issuer {
	t.Helper()
	iss, err := issuer.New(context.Background(), p, issuer.Options{Now: now, Store: store, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("issuer.New: %v", err)
	}
	return iss
}

// answer is a decoded token endpoint response.
type answer struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (a answer) str(k string) string {
	s, _ := a.Body[k].(string)
	return s
}

// post sends a form to h at path, with optional Basic credentials.
func post(t testing.TB, h http.Handler, path string, form url.Values, basic ...string) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	return serve(t, h, req)
}

func serve(t testing.TB, h http.Handler, req *http.Request) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := answer{Status: rec.Code, Header: rec.Header(), Raw: rec.Body.String()}
	if rec.Body.Len() > 0 && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/") {
		if err := json.Unmarshal(rec.Body.Bytes(), &a.Body); err != nil {
			t.Fatalf("response is not JSON: %v: %q", err, rec.Body.String())
		}
	}
	return a
}

func passwordForm(user, pass, scope string) url.Values {
	f := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return f
}

func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
}

const tokenPath = "/api/v1/auth/token"
