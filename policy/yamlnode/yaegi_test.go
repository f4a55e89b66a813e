package yamlnode_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/internal/yaegitest"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/policy/yamlnode/internal/yamlprobe"
)

const module = "github.com/contentguard/contentguard"

// TestInterpretedByYaegi loads the reader, package policy and the probe into
// Yaegi v0.16.1 the way Traefik loads a plugin — sources under a GOPATH,
// stdlib.Symbols — and requires the interpreted reader to give the
// compiled one's answers: the same trees (positions included), the same
// errors, and the same decoded Policy for the repository's real policies.
func TestInterpretedByYaegi(t *testing.T) {
	i := yaegitest.New(t,
		yaegitest.Package(module+"/policy", ".."),
		yaegitest.Package(module+"/policy/yamlnode", "."),
		yaegitest.Package(module+"/policy/yamlnode/internal/yamlprobe", filepath.Join("internal", "yamlprobe")))
	yaegitest.Eval(t, i, `import "`+module+`/policy/yamlnode/internal/yamlprobe"`)
	tree := yaegitest.Eval(t, i, "yamlprobe.Tree").Interface().(func([]byte) string)
	decode := yaegitest.Eval(t, i, "yamlprobe.Decode").Interface().(func(string, []byte) string)

	policies := map[string][]byte{"default.yaml": policyfile.DefaultYAML()}
	files, err := filepath.Glob(filepath.Join(conformance.Dir(), "policies", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no conformance policies: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		policies[filepath.Base(f)] = data
	}
	for name, data := range policies {
		want := yamlprobe.Decode(name, data)
		if strings.HasPrefix(want, "error: ") {
			t.Fatalf("%s does not decode compiled: %s", name, want)
		}
		if got := decode(name, data); got != want {
			t.Errorf("%s decodes differently under Yaegi:\ncompiled: %s\nyaegi:    %s", name, want, got)
		}
		if got, want := tree(data), yamlprobe.Tree(data); got != want {
			t.Errorf("%s reads differently under Yaegi:\ncompiled:\n%s\nyaegi:\n%s", name, want, got)
		}
	}

	// The decoder's refusals — strictness, types, enums, defaults' checks,
	// required keys and the rules across fields (decode_gen.go and
	// validate.go) — give the same positioned errors interpreted.
	def := string(policyfile.DefaultYAML())
	for _, c := range decodeRefusals {
		if !strings.Contains(def, c.from) {
			t.Fatalf("%s: anchor %q not in the default policy", c.name, c.from)
		}
		doc := []byte(strings.Replace(def, c.from, c.to, 1))
		want := yamlprobe.Decode("p.yaml", doc)
		if !strings.HasPrefix(want, "error: p.yaml:") {
			t.Fatalf("%s: not refused with a position compiled: %.200s", c.name, want)
		}
		if got := decode("p.yaml", doc); got != want {
			t.Errorf("%s: refused differently under Yaegi:\ncompiled: %s\nyaegi:    %s", c.name, want, got)
		}
	}

	// Every feature and every refusal of the reader, interpreted.
	for _, c := range features {
		if got, want := tree([]byte(c.doc)), yamlprobe.Tree([]byte(c.doc)); got != want {
			t.Errorf("%s: %q reads differently under Yaegi:\ncompiled:\n%s\nyaegi:\n%s", c.name, c.doc, want, got)
		}
	}
	for _, c := range refusals {
		if got, want := tree([]byte(c.doc)), yamlprobe.Tree([]byte(c.doc)); got != want || !strings.HasPrefix(got, "error: ") {
			t.Errorf("%s: %q fails differently under Yaegi:\ncompiled: %s\nyaegi:    %s", c.name, c.doc, want, got)
		}
	}
	t.Logf("%d policies decoded, %d refused, %d documents and %d refusals read alike compiled and interpreted",
		len(policies), len(decodeRefusals), len(features), len(refusals))
}

// decodeRefusals patch the default policy (from → to) into one the decoder
// refuses, one kind of refusal each.
var decodeRefusals = []struct{ name, from, to string }{
	{"unknown key", "  upstream:", "  upstrem: {}\n  upstream:"},
	{"unknown top-level key", "kind: EdgePolicy", "kind: EdgePolicy\nspecs: {}"},
	{"wrong type", "audiences: [content-api]", "audiences: content-api"},
	{"not a mapping", "    store: {type: memory}", "    store: memory"},
	{"enum", "format: uuidv7", "format: uuidv9"},
	{"bool", "trustIncoming: true", "trustIncoming: \"yes\""},
	{"duration", "timeout: 30s", "timeout: 30 seconds"},
	{"required", "apiVersion: contentguard.dev/v1", "apiVersion: contentguard.dev/v2"},
	{"missing spec", "spec:\n", "spex:\n"},
	{"cidr", "[127.0.0.1/32,", "[300.0.0.1/32,"},
	{"alg none", "algorithms: [ES256]", "algorithms: [none]"},
	{"across fields", "algorithms: [ES256]", "algorithms: [HS256]"},
	{"several at once", "format: uuidv7", "format: uuidv9\n    extra: 1\n    alsoHeaders2: []"},
}
