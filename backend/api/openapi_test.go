package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

var openAPIMethods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

// TestOpenAPIMatchesMux checks both directions: every pattern registered on
// the real mux is documented with its method, and every documented path and
// method is routed by the mux to that same pattern.
func TestOpenAPIMatchesMux(t *testing.T) {
	ts := newTestServer(t, Config{})
	mountAsync(t, ts)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	a := ts.do(t, "GET", "/openapi.json", "")
	if err := json.Unmarshal(a.Raw, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	// Mux pattern "GET /docs/{asset}" ↔ OpenAPI path "/docs/{asset}"; "/{$}" ↔ "/".
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for m := range ops {
			for _, known := range openAPIMethods {
				if m == known {
					documented[strings.ToUpper(m)+" "+path] = true
				}
			}
		}
	}
	served := map[string]bool{}
	for _, p := range ts.patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			t.Fatalf("pattern %q has no method", p)
		}
		if path == "/{$}" {
			path = "/"
		}
		served[method+" "+path] = true
		if !documented[method+" "+path] {
			t.Errorf("served but not documented: %s", p)
		}
	}
	for op := range documented {
		method, path, _ := strings.Cut(op, " ")
		probePath := strings.ReplaceAll(path, "{asset}", "swagger-ui.css")
		probePath = strings.ReplaceAll(probePath, "{id}", "abc")
		req := &http.Request{Method: method, URL: &url.URL{Path: probePath}, Header: http.Header{}}
		_, pattern := ts.mux.Handler(req)
		if pattern == "/" || pattern == "" {
			t.Errorf("documented but not served: %s", op)
			continue
		}
		if !served[op] {
			t.Errorf("documented %s is routed to %q, not its own pattern", op, pattern)
		}
	}
	if a.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("content type %q", a.Header.Get("Content-Type"))
	}
}

func TestDocsAssetsServedOffline(t *testing.T) {
	ts := newTestServer(t, Config{})
	for name, ctype := range docsContentTypes {
		a := ts.do(t, "GET", "/docs/"+name, "")
		if a.Status != 200 || a.Header.Get("Content-Type") != ctype || len(a.Raw) == 0 {
			t.Fatalf("%s: %d %q", name, a.Status, a.Header.Get("Content-Type"))
		}
	}
	if a := ts.do(t, "GET", "/docs/../../etc/passwd", ""); a.Status == 200 {
		t.Fatal("path traversal served")
	}
	if a := ts.do(t, "GET", "/docs/index.html", ""); a.Status != 404 {
		t.Fatalf("unknown asset: %d", a.Status)
	}
}

// TestDocsRenderInChromium loads /docs in a real headless Chromium (no
// network needed: every asset is embedded) and checks that Swagger UI
// rendered the operations from /openapi.json into the DOM.
func TestDocsRenderInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is required (apt-get install chromium)")
	}
	ts := newTestServer(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--dump-dom", ts.URL+"/docs")
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	html := string(dom)
	if strings.Contains(html, `class="errors-wrapper"`) {
		t.Fatalf("Swagger UI reports errors in the OpenAPI document:\n%.3000s", html[strings.Index(html, `class="errors-wrapper"`):])
	}
	for _, want := range []string{
		`class="opblock opblock-post`,
		`data-path="/api/v1/analyze"`,
		`data-path="/api/v1/dedup"`,
		`data-path="/batch/process"`,
		`contentguard text-analysis backend`,
	} {
		if !strings.Contains(html, want) {
			t.Fatalf("rendered DOM lacks %q (%d bytes):\n%.2000s", want, len(html), html)
		}
	}
}
