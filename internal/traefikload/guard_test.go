package traefikload_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/internal/traefikload"
)

// TestYaegiGuard: nothing the Traefik plugin runs — the plugin and every
// package of this module it vendors — holds a construct Yaegi v0.16.1 runs
// wrongly or races on (traefikload.Guard lists them).
func TestYaegiGuard(t *testing.T) {
	out, err := exec.Command("go", "-C", pluginDir, "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dirs := strings.Fields(string(out))
	checked := 0
	for _, dir := range dirs {
		if strings.Contains(dir, "golang-jwt") {
			continue // not ours to change; the conformance suite runs it
		}
		found, err := traefikload.Guard(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range found {
			t.Error(f)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("checked %d packages: the plugin and its engine are more", checked)
	}
	t.Logf("%d packages the plugin runs checked", checked)
}

// TestYaegiGuardFinds: the guard finds each construct it names.
func TestYaegiGuardFinds(t *testing.T) {
	found, err := traefikload.Guard(filepath.Join("testdata", "guard"))
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, f := range found {
		all = append(all, f.What)
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{
		`import "slices"`, "generic type Gen", "generic function first", "range over an int", "range over a func",
		"atomic.Pointer[T]", "the min builtin", "the max builtin", "error method Unwrap", "a, b = x, f(y)",
		"function literal with an unnamed parameter", "select", "tagless switch case with a comma list",
		"for with an init statement", "method expression call of get", "package-level function name returned",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the guard missed %q; it found:\n%s", want, text)
		}
	}
}
