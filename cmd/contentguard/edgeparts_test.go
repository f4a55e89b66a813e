package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/internal/syncbuf"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar/authz"
)

// TestSidecarServesIssuerAndAuthz: `contentguard sidecar` on a policy with
// spec.tokenIssuer serves the token endpoint behind the engine, and with
// --authz answers NGINX subrequests, trusting X-Real-IP from --authz-trusted.
func TestSidecarServesIssuerAndAuthz(t *testing.T) {
	dir := t.TempDir()
	if _, err := writeKeyPair(filepath.Join(dir, "keys"), false); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(file, policyfile.DefaultYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "authz.secret")
	if err := os.WriteFile(secret, []byte(strings.Repeat("k", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	logs := &syncbuf.Buffer{}
	go func() {
		done <- run(ctx, []string{"sidecar", "--policy", file, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
			"--authz", "127.0.0.1:0", "--authz-trusted", "127.0.0.1/32", "--authz-secret-file", secret,
			"--log-level", "info", "--no-access-log"}, io.Discard, logs)
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("sidecar exited %d", code)
			}
		case <-time.After(30 * time.Second):
			t.Error("sidecar did not stop")
		}
	}()
	listen, admin := logField(t, logs, "starting sidecar", "listen"), logField(t, logs, "starting sidecar", "admin")
	authzAddr := logField(t, logs, "serving the NGINX auth_request endpoint", "addr")
	client := &http.Client{Timeout: 10 * time.Second}
	subrequest := func(method, uri, realIP string, header map[string]string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+authzAddr+"/authz", nil)
		req.Header.Set("X-Original-Method", method)
		req.Header.Set("X-Original-URI", uri)
		req.Header.Set("X-Real-IP", realIP)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil
		}
		resp.Body.Close()
		return resp
	}
	waitUntil(t, func() bool { return subrequest("GET", "/health", "198.51.100.1", nil) != nil })

	if r := subrequest("GET", "/health", "198.51.100.1", nil); r.StatusCode != 200 || r.Header.Get("X-CG-Path") != "/health" {
		t.Fatalf("public route: %d %v", r.StatusCode, r.Header)
	}
	r := subrequest("POST", "/api/v1/analyze", "198.51.100.1", nil)
	if r.StatusCode != 401 || r.Header.Get("X-CG-Key") == "" {
		t.Fatalf("no credentials: %d %v", r.StatusCode, r.Header)
	}
	// The key is sealed with the secret of --authz-secret-file: a handler
	// with that secret (another instance) renders it.
	other, err := authz.New(authz.Options{Engine: func() *edge.Engine { return nil }, Secret: []byte(strings.Repeat("k", 40))})
	if err != nil {
		t.Fatal(err)
	}
	render := httptest.NewRequest("GET", authz.RenderPath, nil)
	render.Header.Set(authz.HeaderKey, r.Header.Get("X-CG-Key"))
	rec := httptest.NewRecorder()
	other.ServeHTTP(rec, render)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "credentials_missing") {
		t.Fatalf("rendered by an instance with the same secret: %d %s", rec.Code, rec.Body)
	}

	// The token endpoint through the sidecar's public listener.
	form := url.Values{"grant_type": {"password"}, "username": {demoUser}, "password": {demoPassword}}
	resp, err := client.Post("http://"+listen+"/api/v1/auth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-ID") == "" || resp.Header.Get("RateLimit-Limit") != "10" {
		t.Fatalf("token endpoint through the sidecar: %d %v", resp.StatusCode, resp.Header)
	}
	// The issuer's metrics are on the sidecar's admin /metrics.
	resp, err = client.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `token_grants_total{grant_type="password",result="ok"} 1`) {
		t.Errorf("admin /metrics lacks the grant:\n%s", metrics)
	}
	resp, err = client.Get("http://" + listen + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("JWKS through the sidecar: %d", resp.StatusCode)
	}
}
