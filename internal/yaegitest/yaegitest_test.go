package yaegitest

import (
	"os"
	"path/filepath"
	"testing"
)

// A package copied by Package is importable by the interpreter, its test
// files are left out, and a directory without Go sources is an error.
func TestPackageLoadsAndSkipsTests(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sum.go", "package sum\n\nfunc Sum(a, b int) int { return a + b }\n")
	write("sum_test.go", "package sum\n\nthis does not parse\n")
	i := New(t, Package("example.test/sum", dir))
	Eval(t, i, `import "example.test/sum"`)
	if got := Eval(t, i, "sum.Sum(2, 3)").Int(); got != 5 {
		t.Fatalf("sum.Sum(2, 3) = %d interpreted", got)
	}
	if err := CopyPackage(t.TempDir(), "example.test/empty", t.TempDir()); err == nil {
		t.Fatal("a directory without Go sources was copied without error")
	}
}

// Module finds a required module in the module cache.
func TestModuleCopiesJWT(t *testing.T) {
	gopath := t.TempDir()
	if err := CopyModule(gopath, "github.com/golang-jwt/jwt/v5"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(gopath, "src", "github.com", "golang-jwt", "jwt", "v5", "token.go")); err != nil {
		t.Fatalf("jwt/v5 not copied: %v", err)
	}
}
