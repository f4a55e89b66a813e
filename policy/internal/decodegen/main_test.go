package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecoderIsCurrent: policy/decode_gen.go is what the tags in
// policy/policy.go make. After changing the model, run go generate in
// policy/ and commit the result.
func TestDecoderIsCurrent(t *testing.T) {
	dir := filepath.Join("..", "..")
	src, err := os.ReadFile(filepath.Join(dir, "policy.go"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := Generate(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "decode_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("policy/decode_gen.go is not what policy/policy.go's tags make: run `go generate ./policy` and commit it")
	}
}

// TestGenerateRefusesWhatItCannotDecode: a tag the generator does not
// understand is an error that names the field, not a decoder that skips it.
func TestGenerateRefusesWhatItCannotDecode(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"type A struct {\n\tX string `policy:\"x,dafault=Y\"`\n}", `A.X: unknown tag option "dafault=Y"`},
		{"type A struct {\n\tX chan int `policy:\"x\"`\n}", "A.X: type chan int needs decode="},
		{"type A struct {\n\tX string `policy:\",required\"`\n}", "A.X: no key"},
		{"type A struct {\n\tB B `policy:\"b,default=Z\"`\n}\ntype B struct {\n\tY int `policy:\"y\"`\n}", "A.B: a mapping takes only required and keys"},
		{"type A struct {\n\tX string `policy:\"x,enum=a|b\"`\n}", "A.X: enum=a|b: want NOUN:a|b"},
	} {
		_, err := Generate([]byte("package policy\n\n" + c.src + "\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.src, err, c.want)
		}
	}
}
