package issuer_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/sidecar/issuer"
)

// FuzzTokenEndpoint: any body and Authorization header get a JSON answer
// with a 2xx or 4xx/503 status, never a panic or a 500.
func FuzzTokenEndpoint(f *testing.F) {
	f.Add("grant_type=password&username=alice&password=correct+horse+battery+staple", "")
	f.Add("grant_type=client_credentials", "Basic cmVwb3J0aW5nOnJlcG9ydGluZyBzZWNyZXQ=")
	f.Add("grant_type=refresh_token&refresh_token=abc&scope=read", "")
	f.Add("grant_type=password&scope=%22", "Basic Og==")
	f.Add("a=%zz&&=&grant_type=", "Bearer x")
	p := writePolicy(f, "{file: keys/signing.pem}")
	h := newIssuer(f, p, nil, nil).Handler()
	f.Fuzz(func(t *testing.T, body, authorization string) {
		r := httptest.NewRequest("POST", tokenPath, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authorization != "" {
			r.Header["Authorization"] = []string{authorization}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 && w.Code != 503 {
			t.Fatalf("status %d for %q", w.Code, body)
		}
		var v map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("answer is not JSON: %q", w.Body.String())
		}
	})
}

// FuzzParseSigningKey: arbitrary PEM input is refused or parsed, never a panic.
func FuzzParseSigningKey(f *testing.F) {
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte("not pem"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := issuer.ParseSigningKey(data)
		if err == nil && k == nil {
			t.Fatal("nil key without error")
		}
	})
}
