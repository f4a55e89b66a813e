package kong

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/Kong/go-pdk/test"

	"github.com/contentguard/contentguard/conformance"
)

// TestDocsExamples runs every "$ curl" example of docs/kong.md through the
// plugin with the shipped deploy/kong/policy.yaml and checks what the
// example shows: the status line, each header (X-Request-ID's value is
// fresh each time: only its presence), and the problem's fields. Lines
// with "…" stand for more and are not compared.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "kong.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, c := startInstance(t, NodeOptions{}, map[string]any{
		"policy_file": filepath.Join("..", "..", "deploy", "kong", "policy.yaml"), "upstream": "content-api"})
	examples, err := conformance.CurlExamples(doc, "localhost:8000")
	if err != nil {
		t.Fatalf("docs/kong.md: %v", err)
	}
	for _, ex := range examples {
		x := send(t, c, test.Request{Url: "http://edge.test" + ex.Path, Headers: ex.Header},
			test.Response{Headers: http.Header{"Content-Type": {"application/json"}}})
		for _, problem := range ex.Check(x.ClientRes.Status, x.ClientRes.Headers, x.ClientRes.Body) {
			t.Errorf("docs/kong.md:%d: %s", ex.Line, problem)
		}
	}
	if len(examples) < 2 {
		t.Fatalf("docs/kong.md has %d curl examples; the five steps show a refused and an allowed request", len(examples))
	}
}
