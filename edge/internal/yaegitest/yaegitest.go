// Package yaegitest loads a package of this module into the Yaegi
// interpreter, the way the Traefik plugin runs it, for tests that prove the
// package works interpreted.
package yaegitest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

// New returns an interpreter with the standard library whose GOPATH holds a
// copy of the non-test Go files of dir under importPath, so interpreted code
// can `import "<importPath>"`.
func New(tb testing.TB, importPath, dir string) *interp.Interpreter {
	tb.Helper()
	gopath := tb.TempDir()
	dst := filepath.Join(gopath, "src", filepath.FromSlash(importPath))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		tb.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), src, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	i := interp.New(interp.Options{GoPath: gopath})
	if err := i.Use(stdlib.Symbols); err != nil {
		tb.Fatal(err)
	}
	return i
}
