package traefikload_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/internal/traefikload"
	"go.yaml.in/yaml/v3"
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

// TestDocsInstallSteps runs the install steps of docs/traefik.md before the
// requests TestDocsExamples sends: step 1's commands, in a fresh directory,
// lay out plugins-local/src/<module> with exactly the plugin's tree (what
// Traefik's loader, and traefikload.Load, read); the YAML of steps 2 and 4
// is what deploy/traefik's traefik.yml and dynamic.yml hold, which
// TestDeployStaticConfig and TestDeployDynamicConfig load through the
// loader and put in front of a service.
func TestDocsInstallSteps(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "traefik.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := fencedBlocks(string(doc))
	if len(blocks["sh"]) != 1 || len(blocks["yaml"]) != 2 {
		t.Fatalf("docs/traefik.md: want one sh block (step 1) and two yaml blocks (steps 2 and 4), have %d and %d", len(blocks["sh"]), len(blocks["yaml"]))
	}

	// Step 1, from a directory that has the repository's plugins/.
	work := t.TempDir()
	plugins, err := filepath.Abs(filepath.Dir(pluginDir))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(plugins, filepath.Join(work, "plugins")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", blocks["sh"][0])
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("step 1: %v\n%s", err, out)
	}
	installed := filepath.Join(work, "plugins-local", "src", "github.com", "contentguard", "contentguard", "plugins", "traefik")
	m, err := traefikload.ReadManifest(installed)
	if err != nil {
		t.Fatalf("step 1 installed no plugin Traefik can read: %v", err)
	}
	if want := "github.com/contentguard/contentguard/plugins/traefik"; m.Import != want {
		t.Fatalf("the installed manifest imports %q, want %q", m.Import, want)
	}
	if a, b := treeDigest(t, pluginDir), treeDigest(t, installed); a != b {
		t.Fatalf("step 1 installed a tree that differs from plugins/traefik")
	}

	// Steps 2 and 4.
	for i, file := range []string{"traefik.yml", "dynamic.yml"} {
		var shown any
		if err := yaml.Unmarshal([]byte(blocks["yaml"][i]), &shown); err != nil {
			t.Fatalf("step %d's YAML: %v", 2+2*i, err)
		}
		if path, ok := within(shown, readYAML(t, file)[0]); !ok {
			t.Errorf("step %d shows %s, which deploy/traefik/%s does not hold", 2+2*i, path, file)
		}
	}
}

// fencedBlocks returns a Markdown page's fenced blocks by language.
func fencedBlocks(page string) map[string][]string {
	blocks := map[string][]string{}
	lang, body, in := "", "", false
	for _, line := range strings.Split(page, "\n") {
		switch {
		case !in && strings.HasPrefix(line, "```"):
			lang, body, in = strings.TrimPrefix(line, "```"), "", true
		case in && line == "```":
			blocks[lang] = append(blocks[lang], body)
			in = false
		case in:
			body += line + "\n"
		}
	}
	return blocks
}

// within reports whether every value of shown is in have, at the same place
// (maps may hold more keys, lists must match item by item); when not, it
// returns where they differ.
func within(shown, have any) (string, bool) {
	switch s := shown.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return "", false
		}
		for k, v := range s {
			if path, ok := within(v, h[k]); !ok {
				return strings.TrimSuffix(k+"."+path, "."), false
			}
		}
		return "", true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(s) {
			return "", false
		}
		for i := range s {
			if path, ok := within(s[i], h[i]); !ok {
				return strings.TrimSuffix(strconv.Itoa(i)+"."+path, "."), false
			}
		}
		return "", true
	}
	return "", shown == have
}

// treeDigest hashes a directory's files, names and contents.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", rel, len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
