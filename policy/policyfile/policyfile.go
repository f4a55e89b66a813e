// Package policyfile reads contentguard policies from YAML or JSON files and
// holds the embedded default policy. It is the native front-end of package
// policy: it reads a file (bounded, and failing on any read error) with
// the one YAML reader, package yamlnode, so that every error names
// file:line:col, and leaves all checking to policy.Decode.
package policyfile

import (
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/yamlnode"
)

// MaxFileBytes bounds a policy document; real policies are a few KiB.
const MaxFileBytes = yamlnode.MaxBytes

//go:embed default.yaml
var defaultPolicy []byte

// DefaultYAML returns the embedded default policy document.
func DefaultYAML() []byte { return append([]byte(nil), defaultPolicy...) }

// Default decodes the embedded default policy. Relative paths in it resolve
// against baseDir.
func Default(baseDir string) (*policy.Policy, error) {
	p, err := Parse("embedded:default.yaml", defaultPolicy)
	if err != nil {
		return nil, err
	}
	p.BaseDir = baseDir
	return p, nil
}

// Load reads, decodes and validates the policy file at path.
func Load(path string) (*policy.Policy, error) {
	p, _, err := LoadTree(path)
	return p, err
}

// LoadTree is Load that also returns the document's Node tree (nil if it
// could not be read), for tools that position findings of their own.
func LoadTree(path string) (*policy.Policy, *policy.Node, error) {
	data, err := Read(path)
	if err != nil {
		return nil, nil, err
	}
	p, root, err := yamlnode.DecodeTree(path, data)
	if err != nil {
		return nil, root, err
	}
	p.BaseDir = baseDir(path)
	return p, root, nil
}

// Read reads the policy document at path, refusing one larger than
// MaxFileBytes without reading further.
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	return read(path, f)
}

// ParseFile decodes data, read from the file at path, into a policy whose
// relative references (JWKS files, secrets) resolve against the file's
// directory.
func ParseFile(path string, data []byte) (*policy.Policy, error) {
	p, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	p.BaseDir = baseDir(path)
	return p, nil
}

// baseDir is the directory relative references of the policy file at path
// resolve against: absolute when it can be.
func baseDir(path string) string {
	if abs, err := filepath.Abs(filepath.Dir(path)); err == nil {
		return abs
	}
	return filepath.Dir(path)
}

// read returns all of r, at most MaxFileBytes. Any read error is an error:
// the part read before it could be a valid, shorter policy.
func read(path string, r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("read policy %s: larger than %d bytes", path, MaxFileBytes)
	}
	return data, nil
}

// Parse decodes a policy document. JSON is YAML, so one reader serves both.
// name is used in error messages.
func Parse(name string, data []byte) (*policy.Policy, error) { return yamlnode.Decode(name, data) }

// SyntaxError is a document ParseYAML cannot read, with its position.
type SyntaxError = yamlnode.Error

// ParseYAML converts a YAML document into a policy.Node tree with
// yamlnode.Parse. A document it cannot read is a *SyntaxError.
func ParseYAML(data []byte) (*policy.Node, error) { return yamlnode.Parse(data) }
