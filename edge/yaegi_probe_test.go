package edge_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

func TestYaegiProbe(t *testing.T) {
	gopath := t.TempDir()
	root, _ := filepath.Abs("..")
	for _, pkg := range yaegiPackages {
		copyGoFiles(filepath.Join(root, pkg), filepath.Join(gopath, "src", module, pkg))
	}
	out, _ := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/golang-jwt/jwt/v5").Output()
	copyGoFiles(strings.TrimSpace(string(out)), filepath.Join(gopath, "src", "github.com/golang-jwt/jwt/v5"))
	_ = os.Getenv
	for _, pkg := range yaegiPackages {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic %v", pkg, r)
				}
			}()
			i := interp.New(interp.Options{GoPath: gopath})
			i.Use(stdlib.Symbols)
			if _, err := i.Eval(`import "` + module + `/` + pkg + `"`); err != nil {
				t.Errorf("%s: %v", pkg, err)
				return
			}
			t.Logf("%s ok", pkg)
		}()
	}
}
