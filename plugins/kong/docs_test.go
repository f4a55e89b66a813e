package kong

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/Kong/go-pdk/test"
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
	curl := regexp.MustCompile(`^\$ curl -i((?: -H '[^']+')*) localhost:8000(\S+)$`)
	member := regexp.MustCompile(`"(\w+)":("[^"…]*"|\d+)`)
	examples := 0
	lines := strings.Split(string(doc), "\n")
	for i := 0; i < len(lines); i++ {
		m := curl.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		examples++
		h := http.Header{}
		for _, hv := range regexp.MustCompile(`'([^:']+): ([^']+)'`).FindAllStringSubmatch(m[1], -1) {
			h.Add(hv[1], hv[2])
		}
		x := send(t, c, test.Request{Url: "http://edge.test" + m[2], Headers: h},
			test.Response{Headers: http.Header{"Content-Type": {"application/json"}}})
		got := x.ClientRes
		i++
		status, err := strconv.Atoi(strings.Fields(lines[i] + " x x")[1])
		if err != nil || !strings.HasPrefix(lines[i], "HTTP/1.1 ") {
			t.Fatalf("docs/kong.md:%d: %q is not a status line", i+1, lines[i])
		}
		if got.Status != status {
			t.Errorf("docs/kong.md:%d: %s gives %d, the example shows %d", i+1, m[0], got.Status, status)
		}
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			line := lines[i]
			switch {
			case strings.Contains(line, "…") && !strings.HasPrefix(line, "{"):
			case strings.HasPrefix(line, "{"):
				for _, kv := range member.FindAllStringSubmatch(line, -1) {
					if !strings.Contains(string(got.Body), kv[0]) {
						t.Errorf("docs/kong.md:%d: the problem has no %s: %s", i+1, kv[0], got.Body)
					}
				}
			default:
				name, value, ok := strings.Cut(line, ": ")
				if !ok {
					t.Fatalf("docs/kong.md:%d: %q is not a header", i+1, line)
				}
				if g := got.Headers.Get(name); g == "" || !strings.EqualFold(name, "X-Request-ID") && g != value {
					t.Errorf("docs/kong.md:%d: %s is %q, the example shows %q", i+1, name, g, value)
				}
			}
		}
	}
	if examples < 2 {
		t.Fatalf("docs/kong.md has %d curl examples; the five steps show a refused and an allowed request", examples)
	}
}
