package policyfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/contentguard/contentguard/policy"
)

// TestLoadReadErrors: a read error is an error, never the end of the file:
// a policy cut short can still be a valid, shorter policy.
func TestLoadReadErrors(t *testing.T) {
	full := base + "    - name: second\n      match: {path: /second}\n      auth: none\n"
	cut := strings.Index(full, "    - name: second")
	if _, err := Parse("p.yaml", []byte(full[:cut])); err != nil {
		t.Fatalf("the first part should be a policy on its own: %v", err)
	}
	disk := errors.New("input/output error")
	data, err := read("p.yaml", io.MultiReader(strings.NewReader(full[:cut]), iotest.ErrReader(disk)))
	if !errors.Is(err, disk) || data != nil {
		t.Fatalf("a failing read gave %d bytes and %v", len(data), err)
	}
	if !strings.Contains(err.Error(), "read policy p.yaml") {
		t.Fatalf("error does not name the file: %v", err)
	}

	// A directory opens but cannot be read.
	dir := t.TempDir()
	_, err = Load(dir)
	var perr policy.Errors
	if err == nil || errors.As(err, &perr) || !strings.Contains(err.Error(), "read policy "+dir) {
		t.Fatalf("loading a directory: %v", err)
	}

	// Larger than MaxFileBytes.
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(strings.Repeat("#", MaxFileBytes+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than 4194304 bytes") {
		t.Fatalf("loading an oversized file: %v", err)
	}

	// And the whole file loads.
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(good)
	if err != nil || len(p.Spec.Routes) != 2 || p.BaseDir != dir {
		t.Fatalf("loading %s: %v", good, err)
	}
}

// TestSyntaxErrorsArePositioned: the reader's errors carry file:line:col
// like the decoder's.
func TestSyntaxErrorsArePositioned(t *testing.T) {
	for _, c := range []struct{ from, to, want string }{
		{"metadata: {name: t}", "metadata: &m {name: t}", "p.yaml:3:11: YAML anchors and aliases are not allowed in a policy"},
		{"  routes:", "\troutes:", "p.yaml:15:1: found a tab character where a space is expected"},
		{"metadata: {name: t}", "metadata: {name: t}\nmetadata: {name: u}", `p.yaml:4:1: mapping key "metadata" already defined at line 3`},
		{"metadata: {name: t}", "metadata: {name: t", "p.yaml:4:5: did not find expected ',' or '}' (the mapping starts at 3:11)"},
	} {
		_, err := Parse("p.yaml", []byte(strings.Replace(base, c.from, c.to, 1)))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("got %v, want %s", err, c.want)
		}
	}
}

// TestDocsExample: the YAML example of docs/policy.md is a valid policy,
// and reads as it says.
func TestDocsExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "policy.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## The YAML of a policy file")
	_, block, ok2 := strings.Cut(section, "```yaml\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("no YAML example in docs/policy.md's section on YAML")
	}
	p, err := Parse("policy.md", []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Spec.SecurityHeaders.Custom["Content-Security-Policy"]; got != "default-src 'self'; frame-ancestors 'none'" {
		t.Errorf("folded header: %q", got)
	}
	if len(p.Spec.Routes) != 2 || strings.Join(p.Spec.Routes[1].Match.Methods, ",") != "GET,HEAD" {
		t.Errorf("routes: %+v", p.Spec.Routes)
	}
}
