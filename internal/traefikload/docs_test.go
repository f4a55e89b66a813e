package traefikload_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDocsExamples runs every "$ curl" example of docs/traefik.md through
// the plugin, loaded as Traefik loads it with deploy/traefik's policy, and
// checks what the example shows: the status line, each header (the request
// ID is fresh each time: only its presence), and the problem's members.
// Lines with "…" stand for more.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "traefik.md"))
	if err != nil {
		t.Fatal(err)
	}
	p := loadPlugin(t)
	h, err := p.New(context.Background(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		_, _ = io.WriteString(w, "{}")
	}), map[string]any{"policyFile": filepath.Join(deployDir, "policy.yaml")}, uniqueName("docs"))
	if err != nil {
		t.Fatal(err)
	}
	curl := regexp.MustCompile(`^\$ curl -i((?: -H '[^']+')*) localhost:8000(\S+)$`)
	header := regexp.MustCompile(`'([^:']+): ([^']+)'`)
	member := regexp.MustCompile(`"(\w+)":("[^"…]*"|\d+)`)
	lines := strings.Split(string(doc), "\n")
	examples := 0
	for i := 0; i < len(lines); i++ {
		m := curl.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		examples++
		r := httptest.NewRequest(http.MethodGet, m[2], nil)
		r.RemoteAddr = "198.51.100.9:40000"
		for _, hv := range header.FindAllStringSubmatch(m[1], -1) {
			r.Header.Add(hv[1], hv[2])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		i++
		status, err := strconv.Atoi(strings.Fields(lines[i] + " x x")[1])
		if err != nil || !strings.HasPrefix(lines[i], "HTTP/1.1 ") {
			t.Fatalf("docs/traefik.md:%d: %q is not a status line", i+1, lines[i])
		}
		if w.Code != status {
			t.Errorf("docs/traefik.md:%d: %s gives %d, the example shows %d", i+1, m[0], w.Code, status)
		}
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			line := lines[i]
			switch {
			case strings.HasPrefix(line, "{"):
				for _, kv := range member.FindAllStringSubmatch(line, -1) {
					if !strings.Contains(w.Body.String(), kv[0]) {
						t.Errorf("docs/traefik.md:%d: the problem has no %s: %s", i+1, kv[0], w.Body)
					}
				}
			case line == "…":
			default:
				name, value, ok := strings.Cut(line, ": ")
				if !ok {
					t.Fatalf("docs/traefik.md:%d: %q is not a header", i+1, line)
				}
				if got := w.Header().Get(name); got == "" || !strings.EqualFold(name, "X-Request-ID") && got != value {
					t.Errorf("docs/traefik.md:%d: %s is %q, the example shows %q", i+1, name, got, value)
				}
			}
		}
	}
	if examples < 2 {
		t.Fatalf("docs/traefik.md has %d curl examples; the five steps end with a refused and an allowed request", examples)
	}
}
