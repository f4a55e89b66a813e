package traefikload_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

var deployDir = filepath.Join("..", "..", "deploy", "traefik")

// deployedPolicy is where deploy/traefik's configurations mount the policy.
const deployedPolicy = "/etc/traefik/contentguard/policy.yaml"

func readYAML(t *testing.T, name string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return docs
		} else if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		docs = append(docs, doc)
	}
}

// dig follows keys through nested maps.
func dig(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %q in %v", k, v)
		}
		v = m[k]
	}
	return v
}

// TestDeployStaticConfig: both static configurations install the plugin
// under the name the dynamic configuration uses, with its module path, and
// neither checks for new versions nor reports usage.
func TestDeployStaticConfig(t *testing.T) {
	p := loadPlugin(t)
	for _, c := range []struct{ file, section string }{{"traefik.yml", "localPlugins"}, {"traefik-catalog.yml", "plugins"}} {
		doc := readYAML(t, c.file)[0]
		if dig(t, doc, "global", "checkNewVersion") != false || dig(t, doc, "global", "sendAnonymousUsage") != false {
			t.Errorf("%s: not offline-safe: %v", c.file, doc["global"])
		}
		if got := dig(t, doc, "experimental", c.section, "contentguard", "moduleName"); got != p.Manifest.Import {
			t.Errorf("%s: moduleName %v, want %s", c.file, got, p.Manifest.Import)
		}
		if c.section == "plugins" && dig(t, doc, "experimental", c.section, "contentguard", "version") == nil {
			t.Errorf("%s: a catalog plugin needs a pinned version", c.file)
		}
	}
}

// TestDeployDynamicConfig: the router goes through the middleware to the
// service, and the middleware's options — the dynamic configuration's and
// the Kubernetes Middleware's — build, through Traefik's loader, a
// middleware that refuses a request without the policy's key and forwards
// one with it.
func TestDeployDynamicConfig(t *testing.T) {
	p := loadPlugin(t)
	policy, err := filepath.Abs(filepath.Join(deployDir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dyn := readYAML(t, "dynamic.yml")[0]
	router := dig(t, dyn, "http", "routers", "content-api").(map[string]any)
	if mws := router["middlewares"].([]any); len(mws) != 1 || mws[0] != "contentguard" {
		t.Fatalf("router middlewares %v", mws)
	}
	if dig(t, dyn, "http", "services", router["service"].(string)) == nil {
		t.Fatalf("router service %v is not defined", router["service"])
	}
	options := map[string]map[string]any{
		"dynamic.yml": dig(t, dyn, "http", "middlewares", "contentguard", "plugin", "contentguard").(map[string]any),
	}
	var crd map[string]any
	list := readYAML(t, "middleware.yaml")
	if len(list) != 1 || list[0]["kind"] != "List" {
		t.Fatalf("middleware.yaml: want one v1 List document (every YAML file of the repository is one document)")
	}
	for _, item := range list[0]["items"].([]any) {
		doc := item.(map[string]any)
		switch doc["kind"] {
		case "Middleware":
			crd = doc
			options["middleware.yaml"] = dig(t, doc, "spec", "plugin", "contentguard").(map[string]any)
		case "IngressRoute":
			mw := dig(t, doc, "spec", "routes").([]any)[0].(map[string]any)["middlewares"].([]any)[0]
			if crd == nil || dig(t, mw, "name") != dig(t, crd, "metadata", "name") {
				t.Errorf("the IngressRoute does not use the Middleware: %v", mw)
			}
		}
	}
	if len(options) != 2 {
		t.Fatalf("middleware.yaml has no Middleware")
	}
	for file, opts := range options {
		if opts["policyFile"] != deployedPolicy {
			t.Fatalf("%s: policyFile %v, want %s", file, opts["policyFile"], deployedPolicy)
		}
		local := map[string]any{"policyFile": policy} // the mount, here
		h, err := p.New(context.Background(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "2")
			_, _ = io.WriteString(w, "ok")
		}), local, uniqueName("deploy"))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, c := range []struct {
			key    string
			status int
		}{{"", http.StatusUnauthorized}, {"demo-api-key", http.StatusOK}} {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/jobs", nil)
			if c.key != "" {
				r.Header.Set("X-API-Key", c.key)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.status {
				t.Errorf("%s: key %q: %d, want %d", file, c.key, w.Code, c.status)
			}
		}
	}
}
