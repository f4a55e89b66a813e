package issuer_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/clocktest"
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
