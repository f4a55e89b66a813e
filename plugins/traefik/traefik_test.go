package traefik

// These tests use the standard library only, so that they run both compiled
// (go test) and interpreted, as Traefik runs the plugin (yaegi test, the
// convention of Traefik's plugin template; make test runs both). The
// conformance suite, the concurrency and streaming tests run the plugin
// through Traefik's own loader: see internal/traefikload.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// policyWithKey is a policy with a public route and one that takes the API
// key "test-key".
func policyWithKey() string {
	sum := sha256.Sum256([]byte("test-key"))
	return `apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: plugin-test}
spec:
  requestID: {header: X-Request-ID}
  auth:
    jwt:
      providers:
        - name: main
          issuer: https://issuer.test
          audiences: [api]
          algorithms: [HS256]
          secret: {value: "a-test-secret-of-at-least-32-bytes!!"}
          forwardClaims: {sub: X-Auth-Subject}
    apiKeys:
      header: X-API-Key
      keys:
        - {id: tester, sha256: ` + hex.EncodeToString(sum[:]) + `, scopes: [read]}
  routes:
    - name: health
      match: {path: /healthz}
      auth: none
    - name: api
      match: {pathPrefix: /api/}
      auth: {anyOf: [apiKey], scopes: [read]}
      rateLimit: {key: apiKey, rate: 100, per: 1m}
`
}

// upstream records what the next handler received.
type upstream struct{ got *http.Request }

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.got = r
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok"))
}

func build(t *testing.T, name string, cfg *Config) (http.Handler, *upstream) {
	t.Helper()
	up := &upstream{}
	h, err := New(context.Background(), up, cfg, name)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h, up
}

func TestCreateConfigIsEmpty(t *testing.T) {
	cfg := CreateConfig()
	if cfg == nil || cfg.PolicyFile != "" || cfg.Policy != "" {
		t.Fatalf("CreateConfig() = %+v, want an empty config", cfg)
	}
}

func TestAllowedRequestCarriesIDRateLimitAndIdentity(t *testing.T) {
	h, up := build(t, "allowed@test", &Config{Policy: policyWithKey()})
	r := httptest.NewRequest(http.MethodGet, "/api/things", nil)
	r.Header.Set("X-API-Key", "test-key")
	r.Header.Set("X-Auth-Subject", "forged")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", w.Code, w.Body.String())
	}
	if up.got == nil {
		t.Fatal("the request did not reach the next handler")
	}
	if got := up.got.Header.Get("X-Auth-Subject"); got != "tester" {
		t.Errorf("forwarded subject %q, want the key's id, not the client's", got)
	}
	id := w.Header().Get("X-Request-Id")
	if id == "" || up.got.Header.Get("X-Request-Id") != id {
		t.Errorf("request id %q, upstream saw %q: want one fresh id on both", id, up.got.Header.Get("X-Request-Id"))
	}
	if w.Header().Get("RateLimit-Remaining") != "99" {
		t.Errorf("RateLimit-Remaining %q, want 99", w.Header().Get("RateLimit-Remaining"))
	}
}

func TestRefusedRequestIsAProblem(t *testing.T) {
	h, up := build(t, "refused@test", &Config{Policy: policyWithKey()})
	for _, c := range []struct {
		key    string
		status int
		reason string
	}{
		{"", http.StatusUnauthorized, `"reason":"credentials_missing"`},
		{"wrong", http.StatusUnauthorized, `"reason":"invalid_api_key"`},
	} {
		up.got = nil
		r := httptest.NewRequest(http.MethodGet, "/api/things", nil)
		if c.key != "" {
			r.Header.Set("X-API-Key", c.key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.reason) {
			t.Errorf("key %q: %d %s, want %d with %s", c.key, w.Code, w.Body.String(), c.status, c.reason)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("key %q: content type %q", c.key, ct)
		}
		if up.got != nil {
			t.Errorf("key %q: a refused request reached the next handler", c.key)
		}
	}
}

func TestNewRefusesBadConfigurations(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "policy.yaml")
	doc := strings.Replace(policyWithKey(), "rate: 100", "rate: -1", 1)
	if err := os.WriteFile(bad, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  *Config
		want string
	}{
		{"neither", &Config{}, "set one of policyFile and policy"},
		{"both", &Config{PolicyFile: bad, Policy: "x"}, "set only one"},
		{"missing file", &Config{PolicyFile: filepath.Join(dir, "nope.yaml")}, "read policy"},
		{"invalid policy", &Config{PolicyFile: bad}, bad + ":26:38: spec.routes[1].rateLimit.rate"},
		{"bad YAML", &Config{Policy: "spec: [\n"}, "middleware bad YAML@test policy:"},
	} {
		_, err := New(context.Background(), &upstream{}, c.cfg, c.name+"@test")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New error %v, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestSamePolicyKeepsItsEngine(t *testing.T) {
	cfg := &Config{Policy: policyWithKey()}
	a, _ := build(t, "kept@test", cfg)
	b, _ := build(t, "kept@test", cfg)
	if a.(*Middleware).engine != b.(*Middleware).engine {
		t.Fatal("a rebuilt middleware with the same policy got a new engine: its rate limits would start afresh")
	}
	changed := &Config{Policy: strings.Replace(policyWithKey(), "rate: 100", "rate: 50", 1)}
	c, _ := build(t, "kept@test", changed)
	if c.(*Middleware).engine == a.(*Middleware).engine {
		t.Fatal("a changed policy kept the old engine")
	}
}
