package sidecar_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/syncbuf"
	"github.com/contentguard/contentguard/sidecar"
)

// jwksPolicy has one JWT provider reading its keys from url.
func jwksPolicy(url string, readyWithoutKeys bool) string {
	return fmt.Sprintf(`
apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: keys}
spec:
  upstream: {url: http://127.0.0.1:9, timeout: 5s}
  auth:
    jwt:
      providers:
        - name: idp
          issuer: https://idp.example
          audiences: [api]
          algorithms: [ES256]
          jwks: {url: %q, readyWithoutKeys: %v}
  routes:
    - name: api
      match: {pathPrefix: /}
      auth: {anyOf: [jwt]}
`, url, readyWithoutKeys)
}

// TestReadyzWaitsForKeys: /readyz answers 503 while a JWT provider has no
// keys (its tokens would all be refused with no_keys), every failed fetch
// is logged at WARN with the URL and counted, the retry comes after about
// a second (not the 30s of an unknown-kid refetch), and /readyz turns 200 once
// keys arrive. A provider marked readyWithoutKeys does not hold readiness.
func TestReadyzWaitsForKeys(t *testing.T) {
	var up atomic.Bool
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","alg":"ES256",`+
			`"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`)
	}))
	defer idp.Close()
	var logs syncbuf.Buffer
	sc := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, jwksPolicy(idp.URL+"/jwks", false)), Logger: newJSONLogger(&logs)})
	readyz := func(sc *running) (int, string) {
		resp := adminDo(t, sc, "GET", "/readyz")
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, body := readyz(sc); status != 503 || !strings.Contains(body, `"awaiting keys"`) || !strings.Contains(body, `"idp"`) {
		t.Fatalf("readyz without keys: %d %s", status, body)
	}
	// The retry after the first failure comes after a second (the
	// 10s bound only keeps a stuck test from hanging).
	waitFor(t, 10*time.Second, func() bool {
		return labelledValue(t, sc, sidecar.MetricJWKSFetches, "result", "error") >= 2
	})
	if !strings.Contains(logs.String(), `"msg":"JWKS fetch failed"`) || !strings.Contains(logs.String(), `"url":"`+idp.URL+`/jwks"`) ||
		!strings.Contains(logs.String(), "status 503") || !strings.Contains(logs.String(), `"level":"WARN"`) {
		t.Fatalf("failed fetches are not logged at WARN with the URL and the error:\n%s", logs.String())
	}
	up.Store(true)
	waitFor(t, 10*time.Second, func() bool { status, _ := readyz(sc); return status == 200 })
	if n := labelledValue(t, sc, sidecar.MetricJWKSFetches, "result", "ok"); n != 1 {
		t.Fatalf("jwks_fetches_total{result=ok} = %v, want 1", n)
	}

	// A provider that may start without keys does not hold readiness.
	up.Store(false)
	optional := startSidecar(t, sidecar.Options{Policy: parsePolicy(t, jwksPolicy(idp.URL+"/jwks", true))})
	if status, body := readyz(optional); status != 200 {
		t.Fatalf("readyz with readyWithoutKeys: %d %s", status, body)
	}
}

// TestReloadFailureCountedOnce: a broken policy file that the watcher and
// SIGHUP (Reload) both try, again and again while the file is touched, is
// one refused document: counted once, though every attempt is refused and
// logged. A different broken document counts again.
func TestReloadFailureCountedOnce(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	writeFile(t, file, policyMarked("A"))
	up := startUpstream(t)
	sc := startSidecar(t, sidecar.Options{Policy: loadPolicy(t, file), PolicyFile: file, Upstream: up.URL,
		WatchInterval: 10 * time.Millisecond})
	writeFile(t, file, invalidPolicies[0])
	if sc.srv.Reload() == nil { // SIGHUP, racing the watcher
		t.Fatal("a broken policy was accepted")
	}
	for i := 0; i < 20; i++ {
		writeFile(t, file, invalidPolicies[0]) // touched, same content: the watcher reads it again
		if sc.srv.Reload() == nil {
			t.Fatal("a broken policy was accepted")
		}
	}
	if n := counterValue(t, sc, sidecar.MetricPolicyReloadError); n != 1 {
		t.Fatalf("policy_reload_errors_total = %v after one broken document, want 1", n)
	}
	writeFile(t, file, invalidPolicies[1])
	waitFor(t, 10*time.Second, func() bool { return counterValue(t, sc, sidecar.MetricPolicyReloadError) == 2 })
	if sc.srv.Policy().Metadata.Name != "policy-A" {
		t.Fatal("a broken file replaced the policy")
	}
}
