package issuer_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/contentguard/contentguard/edge/problem"
)

// TestNonOAuthAnswersAreProblems: what the token endpoint answers outside
// the OAuth exchanges — a POST to the JWKS or the discovery document, an
// unknown path — is a problem of the scheme every contentguard answer
// shares, not an OAuth error or text/plain.
func TestNonOAuthAnswersAreProblems(t *testing.T) {
	h := newIssuer(t, writePolicy(t, ""), nil, nil).Handler()
	for _, c := range []struct {
		req    *http.Request
		status int
		slug   string
	}{
		{httptest.NewRequest(http.MethodPost, "/.well-known/jwks.json", nil), 405, "method-not-allowed"},
		{httptest.NewRequest(http.MethodDelete, "/.well-known/openid-configuration", nil), 405, "method-not-allowed"},
		{httptest.NewRequest(http.MethodGet, "/api/v1/auth/other", nil), 404, "not-found"},
	} {
		a := serve(t, h, c.req)
		if a.Status != c.status || a.Header.Get("Content-Type") != problem.ContentType || a.str("type") != problem.TypeURI(c.slug) {
			t.Errorf("%s %s: %d %s %q, want %d %s", c.req.Method, c.req.URL.Path, a.Status, a.Header.Get("Content-Type"), a.Raw, c.status, problem.TypeURI(c.slug))
		}
	}
	// The OAuth exchanges keep RFC 6749's error format.
	if a := post(t, h, tokenPath, url.Values{"grant_type": {"nonsense"}}); a.str("error") != "unsupported_grant_type" {
		t.Errorf("token endpoint error: %d %s", a.Status, a.Raw)
	}
}
