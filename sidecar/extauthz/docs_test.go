package extauthz_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/contentguard/contentguard/conformance"
)

// TestDocsExamples runs every "$ curl" example of docs/envoy.md through
// the Envoy the control plane configures for deploy/envoy/policy.yaml
// (emulated, with ext_authz and the access log for real) and checks what
// the example shows.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "envoy.md"))
	if err != nil {
		t.Fatal(err)
	}
	examples, err := conformance.CurlExamples(doc, "localhost:10000")
	if err != nil {
		t.Fatalf("docs/envoy.md: %v", err)
	}
	if len(examples) < 2 {
		t.Fatalf("docs/envoy.md has %d curl examples; the five steps show a refused and an allowed request", len(examples))
	}
	in := envoyPlane{slots: make(chan struct{}, 1)}.Start(t, filepath.Join("..", "..", "deploy", "envoy", "policy.yaml"))
	defer in.Close()
	for _, ex := range examples {
		resp := in.Do(t, conformance.SentRequest{Method: http.MethodGet, Path: ex.Path, Header: ex.Header, Proto: "HTTP/1.1"}, conformance.Upstream{})
		for _, problem := range ex.Check(resp.Status, resp.Header, resp.Body) {
			t.Errorf("docs/envoy.md:%d: %s", ex.Line, problem)
		}
	}
}
