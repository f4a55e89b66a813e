package traefikload_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestVendorInSync: the plugin's vendor/ is what `go mod vendor` makes of
// this module now. Traefik loads the plugin from vendor/, so a change to the
// engine that is not vendored (make vendor) would not reach Traefik users.
func TestVendorInSync(t *testing.T) {
	fresh := filepath.Join(t.TempDir(), "vendor")
	cmd := exec.Command("go", "mod", "vendor", "-o", fresh)
	cmd.Dir = pluginDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, out)
	}
	committed := filepath.Join(pluginDir, "vendor")
	want, got := tree(t, fresh), tree(t, committed)
	for name, data := range want {
		if have, ok := got[name]; !ok {
			t.Errorf("vendor/%s is missing: run make vendor", name)
		} else if !bytes.Equal(have, data) {
			t.Errorf("vendor/%s differs from the module's: run make vendor", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("vendor/%s is not in the module any more: run make vendor", name)
		}
	}
}

func tree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
