// Package yaegitest loads packages into the Yaegi interpreter the way the
// Traefik plugin's loader does — sources under a GOPATH, interp.New with the
// standard library's symbols — for tests that prove code works interpreted.
package yaegitest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

// A Source puts one package's sources into a GOPATH.
type Source func(gopath string) error

// Package is the Source for the non-test Go files of dir, importable as
// importPath.
func Package(importPath, dir string) Source {
	return func(gopath string) error { return CopyPackage(gopath, importPath, dir) }
}

// Module is the Source for the root package of a module this module
// requires (e.g. github.com/golang-jwt/jwt/v5), found in the module cache.
func Module(modulePath string) Source {
	return func(gopath string) error { return CopyModule(gopath, modulePath) }
}

// New returns an interpreter with the standard library whose GOPATH, a
// temporary directory of tb, holds sources, so that interpreted code can
// import them.
func New(tb testing.TB, sources ...Source) *interp.Interpreter {
	tb.Helper()
	i, err := Load(tb.TempDir(), sources...)
	if err != nil {
		tb.Fatalf("yaegi: %v", err)
	}
	return i
}

// Load is New for callers without a testing.TB (a sync.Once shared by
// tests): it fills gopath with sources and returns the interpreter.
func Load(gopath string, sources ...Source) (*interp.Interpreter, error) {
	for _, src := range sources {
		if err := src(gopath); err != nil {
			return nil, err
		}
	}
	i := interp.New(interp.Options{GoPath: gopath})
	if err := i.Use(stdlib.Symbols); err != nil {
		return nil, fmt.Errorf("loading the standard library symbols: %w", err)
	}
	return i, nil
}

// CopyPackage copies the non-test Go files of dir to gopath/src/importPath.
// Sub-packages are copied on their own. A dir without Go files is an error:
// a wrong path must not load as an empty package.
func CopyPackage(gopath, importPath, dir string) error {
	dst := filepath.Join(gopath, "src", filepath.FromSlash(importPath))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("copying %s: %w", importPath, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("copying %s: %w", importPath, err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("copying %s: %w", importPath, err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			return fmt.Errorf("copying %s: %w", importPath, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("copying %s: no Go sources in %s", importPath, dir)
	}
	return nil
}

// CopyModule copies the root package of modulePath, located with
// `go list -m -f {{.Dir}}`, to gopath/src/modulePath.
func CopyModule(gopath, modulePath string) error {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", modulePath).Output()
	if err != nil {
		return fmt.Errorf("locating module %s: %w", modulePath, err)
	}
	return CopyPackage(gopath, modulePath, strings.TrimSpace(string(out)))
}

// Eval evaluates src in i and fails tb if the interpreter refuses it.
func Eval(tb testing.TB, i *interp.Interpreter, src string) reflect.Value {
	tb.Helper()
	v, err := i.Eval(src)
	if err != nil {
		what := strconv.Quote(src)
		if strings.Contains(src, "\n") {
			what = "the program"
		}
		tb.Fatalf("yaegi: evaluating %s: %v", what, err)
	}
	return v
}
