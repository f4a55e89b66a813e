package nginxconf_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/sidecar/authz/nginxconf"
)

var update = flag.Bool("update", false, "rewrite deploy/nginx/contentguard/*.conf from the conformance standard policy")

// deployDir holds the shipped snippets, generated from the standard policy.
const deployDir = "../../../deploy/nginx/contentguard"

// TestShippedFilesAreGenerated: the checked-in snippets are exactly what
// Render makes of the conformance standard policy, so they cannot drift.
// Regenerate with go test ./sidecar/authz/nginxconf -run TestShippedFilesAreGenerated -update
// (or contentguard policy nginx --policy conformance/policies/standard.yaml --out deploy/nginx/contentguard).
func TestShippedFilesAreGenerated(t *testing.T) {
	p, err := policyfile.Load("../../../conformance/policies/standard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files, err := nginxconf.Render(p)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files.ByName() {
		path := filepath.Join(deployDir, name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from Render(standard.yaml); regenerate it (-update).\n--- generated:\n%s", path, want)
		}
	}
}
