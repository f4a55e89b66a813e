package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/conformance"
)

// TestPolicyNginx: the three snippets of the standard policy are what
// deploy/nginx ships, printed or written; usage errors exit 2, policy
// errors 1 with the position or the header at fault.
func TestPolicyNginx(t *testing.T) {
	standard := filepath.Join(conformance.Dir(), "policies", "standard.yaml")
	shipped := filepath.Join(conformance.Dir(), "..", "deploy", "nginx", "contentguard")
	names := []string{"variables.conf", "upstream-headers.conf", "response-headers.conf"}

	dir := filepath.Join(t.TempDir(), "new")
	code, out, errs := runCLI(t, "policy", "nginx", "--policy", standard, "--out", dir)
	if code != 0 {
		t.Fatalf("--out: exit %d, %s", code, errs)
	}
	for _, name := range names {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(shipped, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from the shipped one:\n%s", name, got)
		}
		if !strings.Contains(out, filepath.Join(dir, name)) {
			t.Errorf("output does not name %s: %q", name, out)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	code, out, _ = runCLI(t, "policy", "nginx", "--policy", standard)
	if code != 0 || !strings.Contains(out, "# ==> upstream-headers.conf <==\n") ||
		!strings.Contains(out, "proxy_set_header X-Auth-Subject $cg_u_x_auth_subject;\n") {
		t.Errorf("stdout listing: exit %d:\n%s", code, out)
	}

	for _, args := range [][]string{
		{"policy", "nginx"},
		{"policy", "nginx", "--policy", standard, "extra"},
		{"policy", "nginx", "--frobnicate"},
	} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: contentguard.dev/v1\nkind: EdgePolicy\nspec:\n  routes:\n    - name: a\n      match: {path: /a}\n      auth: none\n      rateLimit: {rate: -1, per: 1m}\n"), 0o644)
	if code, _, errs := runCLI(t, "policy", "nginx", "--policy", bad); code != 1 || !strings.Contains(errs, bad+":8:25: spec.routes[0].rateLimit.rate") {
		t.Errorf("invalid policy: exit %d, stderr %q", code, errs)
	}
	unsafe := filepath.Join(t.TempDir(), "unsafe.yaml")
	os.WriteFile(unsafe, []byte("apiVersion: contentguard.dev/v1\nkind: EdgePolicy\nspec:\n  requestID: {header: X-$host}\n  routes:\n    - name: a\n      match: {path: /a}\n      auth: none\n"), 0o644)
	out = filepath.Join(t.TempDir(), "unsafe")
	if code, _, errs := runCLI(t, "policy", "nginx", "--policy", unsafe, "--out", out); code != 1 || !strings.Contains(errs, "spec.requestID.header") {
		t.Errorf("unsafe header name: exit %d, stderr %q", code, errs)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("an unsafe policy still created the output directory")
	}
}
