package traefikload_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/conformance"
)

func standardPolicy() string {
	return filepath.Join(conformance.Dir(), "policies", "standard.yaml")
}

// TestManifest: .traefik.yml says what Traefik's catalog and loader need,
// and its testData builds a working middleware, as the catalog checks.
func TestManifest(t *testing.T) {
	p := loadPlugin(t)
	m := p.Manifest
	if m.Import != "github.com/contentguard/contentguard/plugins/traefik" || p.BasePkg != "traefik" {
		t.Fatalf("import %q, package %q", m.Import, p.BasePkg)
	}
	h, err := p.New(context.Background(), http.NotFoundHandler(), m.TestData, uniqueName("testdata"))
	if err != nil {
		t.Fatalf("New with testData: %v", err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if w.Code != http.StatusNotFound || w.Header().Get("X-Request-Id") == "" {
		t.Fatalf("testData middleware answered %d with request id %q", w.Code, w.Header().Get("X-Request-Id"))
	}
}

// TestConfigDecodedAsTraefikDoes: the options reach Config as Traefik's
// mapstructure decoding puts them, whatever the case of the keys (YAML
// files say policyFile, labels are lower case), and the json tags play no
// part.
func TestConfigDecodedAsTraefikDoes(t *testing.T) {
	p := loadPlugin(t)
	data, err := os.ReadFile(standardPolicy())
	if err != nil {
		t.Fatal(err)
	}
	// Inline, relative paths resolve against Traefik's working directory.
	inline := strings.ReplaceAll(string(data), "../testdata/keys/", filepath.Join(conformance.Dir(), "testdata", "keys")+"/")
	for _, options := range []map[string]any{
		{"policyFile": standardPolicy()},
		{"policyfile": standardPolicy()},
		{"PolicyFile": standardPolicy()},
		{"POLICYFILE": standardPolicy()},
		{"policy": inline},
		{"Policy": inline},
	} {
		cfg, err := p.Config(options)
		if err != nil {
			t.Fatalf("%v: %v", options, err)
		}
		c := cfg.Elem()
		if got := c.FieldByName("PolicyFile").String() + c.FieldByName("Policy").String(); got == "" {
			t.Errorf("%v: nothing reached the config", options)
		}
		if _, err := p.New(context.Background(), http.NotFoundHandler(), options, uniqueName("decode")); err != nil {
			t.Errorf("%v: New: %v", options, err)
		}
	}
	// A json tag's spelling is not an option name to mapstructure.
	if _, err := p.New(context.Background(), http.NotFoundHandler(), map[string]any{"policy_file": standardPolicy()}, uniqueName("decode")); err == nil ||
		!strings.Contains(err.Error(), "set one of policyFile and policy") {
		t.Errorf("policy_file: %v, want the option unknown, so no policy", err)
	}
}

// TestNewErrorNamesPosition: a policy that does not load fails New with
// file:line:col, which Traefik logs as it disables the plugin.
func TestNewErrorNamesPosition(t *testing.T) {
	p := loadPlugin(t)
	data, err := os.ReadFile(standardPolicy())
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "policy.yaml")
	doc := strings.Replace(string(data), "algorithms: [ES256, RS256, EdDSA]", "algorithms: [ES256, none]", 1)
	if doc == string(data) {
		t.Fatal("the standard policy changed: adjust the test")
	}
	if err := os.WriteFile(bad, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	line := 1 + strings.Count(doc[:strings.Index(doc, "none]")], "\n")
	col := strings.Index(doc, "none]") - strings.LastIndex(doc[:strings.Index(doc, "none]")], "\n")
	_, err = p.New(context.Background(), http.NotFoundHandler(), map[string]any{"policyFile": bad}, uniqueName("bad"))
	want := bad + ":" + strconv.Itoa(line) + ":" + strconv.Itoa(col) + ": "
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `"none"`) {
		t.Fatalf("New: %v, want %s… about none", err, want)
	}
}

// TestStreamsFlush: a streamed answer (SSE, NDJSON) goes through the
// interpreted middleware chunk by chunk, behind a real HTTP server and
// Traefik's kind of proxy: the client reads the first chunk while the
// service is still holding the rest back.
func TestStreamsFlush(t *testing.T) {
	for _, contentType := range []string{"text/event-stream", "application/x-ndjson"} {
		t.Run(contentType, func(t *testing.T) {
			release := make(chan struct{})
			service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", contentType)
				_, _ = io.WriteString(w, "first\n\n")
				http.NewResponseController(w).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, "second\n\n")
			}))
			defer service.Close()
			target, _ := http.NewRequest(http.MethodGet, service.URL, nil)
			p := loadPlugin(t)
			h, err := p.New(context.Background(), traefikProxy(target.URL, http.DefaultTransport),
				map[string]any{"policyFile": standardPolicy()}, uniqueName("stream"))
			if err != nil {
				t.Fatal(err)
			}
			edge := httptest.NewServer(h)
			defer edge.Close()
			defer close(release)

			type result struct {
				status int
				id     string
				line   string
				err    error
			}
			first := make(chan result, 1)
			go func() {
				resp, err := http.Get(edge.URL + "/healthz")
				if err != nil {
					first <- result{err: err}
					return
				}
				defer resp.Body.Close()
				line, err := bufio.NewReader(resp.Body).ReadString('\n')
				first <- result{status: resp.StatusCode, id: resp.Header.Get("X-Request-Id"), line: line, err: err}
			}()
			select {
			case r := <-first:
				if r.err != nil || r.status != http.StatusOK || r.id == "" || r.line != "first\n" {
					t.Fatalf("status %d, request id %q, first chunk %q, error %v", r.status, r.id, r.line, r.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the first chunk did not arrive while the service held the rest back: the middleware buffers")
			}
		})
	}
}
