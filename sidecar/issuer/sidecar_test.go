package issuer_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/clocktest"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar"
)

// TestBruteForceThroughTheSidecar: served by the sidecar, the token
// endpoint is judged by the engine like any route, so the policy's rate
// limit on it (5 per hour per address) stops password guessing: the sixth
// attempt is 429 and never reaches bcrypt.
func TestBruteForceThroughTheSidecar(t *testing.T) {
	p := writePolicy(t, "{file: keys/signing.pem}")
	c := clocktest.New(time.Now())
	iss := newIssuer(t, p, nil, c.Now)
	srv, err := sidecar.New(context.Background(), sidecar.Options{
		Policy: p, Local: iss.Handler(), LocalPaths: iss.Paths(), Now: c.Now, Upstream: "http://127.0.0.1:9",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	h := srv.Handler()
	attempt := func(password, peer string) answer {
		r := httptest.NewRequest("POST", tokenPath, strings.NewReader(passwordForm("alice", password, "").Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = peer + ":40000"
		return serve(t, h, r)
	}
	for i := 0; i < 5; i++ {
		if a := attempt("guess", "192.0.2.7"); a.Status != 400 || a.str("error") != "invalid_grant" {
			t.Fatalf("guess %d: %d %s", i+1, a.Status, a.Raw)
		}
	}
	a := attempt(alicePassword, "192.0.2.7")
	if a.Status != 429 || a.Header.Get("Retry-After") == "" || !strings.HasPrefix(a.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("sixth attempt: %d %v %s", a.Status, a.Header, a.Raw)
	}
	// Another address has its own budget; the right password works there.
	if a := attempt(alicePassword, "192.0.2.8"); a.Status != 200 || a.str("access_token") == "" {
		t.Fatalf("other address: %d %s", a.Status, a.Raw)
	}
	// 5 an hour refill one every 12 minutes: then one more try.
	c.Advance(12 * time.Minute)
	if a := attempt(alicePassword, "192.0.2.7"); a.Status != 200 {
		t.Fatalf("after the refill: %d %s", a.Status, a.Raw)
	}
	// The well-known documents and revocation are served through it too.
	for _, path := range []string{"/.well-known/jwks.json", "/.well-known/openid-configuration"} {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = "192.0.2.9:1"
		if a := serve(t, h, r); a.Status != 404 {
			// The test policy has no route for them: the engine refuses.
			t.Errorf("GET %s without a route: %d", path, a.Status)
		}
	}
}

// TestTokensAcceptedFromTheFirstRequest: with an ephemeral signing key and a
// JWT provider whose jwks.url names the sidecar itself (which does not
// listen yet when the verifier starts), the issuer's tokens are accepted
// from the first request once its keys are given in process — and refused
// with no_keys without them, the failure this prevents.
func TestTokensAcceptedFromTheFirstRequest(t *testing.T) {
	p := writePolicy(t, "")
	doc, err := os.ReadFile(p.Source)
	if err != nil {
		t.Fatal(err)
	}
	self := strings.Replace(string(doc), "jwks: {file: keys/jwks.json}", `jwks: {url: "http://127.0.0.1:9/.well-known/jwks.json"}`, 1)
	if err := os.WriteFile(p.Source, []byte(self), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err = policyfile.Load(p.Source); err != nil {
		t.Fatal(err)
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "analysed for ", r.Header.Get("X-Auth-Subject"))
	}))
	defer backend.Close()
	iss := newIssuer(t, p, nil, time.Now)
	for _, inProcess := range []bool{true, false} {
		opts := sidecar.Options{Policy: p, Local: iss.Handler(), LocalPaths: iss.Paths(), Upstream: backend.URL}
		if inProcess {
			opts.InProcessJWKS = iss.InProcessJWKS()
		}
		srv, err := sidecar.New(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		front := httptest.NewServer(srv.Handler()) // over a real socket
		tok := post(t, srv.Handler(), tokenPath, passwordForm("alice", alicePassword, ""))
		if tok.Status != 200 || tok.str("access_token") == "" {
			t.Fatalf("token: %d %s", tok.Status, tok.Raw)
		}
		r, _ := http.NewRequest("POST", front.URL+"/api/v1/analyze", strings.NewReader("text"))
		r.Header.Set("Authorization", "Bearer "+tok.str("access_token"))
		resp, err := front.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		front.Close()
		srv.Close()
		if inProcess && (resp.StatusCode != 200 || string(body) != "analysed for alice") {
			t.Fatalf("first request with the issuer's keys in process: %d %s", resp.StatusCode, body)
		}
		if !inProcess && (resp.StatusCode != 401 || !strings.Contains(string(body), `"no_keys"`)) {
			t.Fatalf("without them: %d %s, want 401 no_keys", resp.StatusCode, body)
		}
	}
}
