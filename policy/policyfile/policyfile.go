// Package policyfile reads contentguard policies from YAML or JSON files and
// holds the embedded default policy. It is the native front-end of package
// policy: it turns YAML into policy's position-carrying Node tree, so that
// every error names file:line:col, and leaves all checking to policy.Decode.
package policyfile

import (
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/contentguard/contentguard/policy"
)

// MaxFileBytes bounds a policy document; real policies are a few KiB.
const MaxFileBytes = 4 << 20

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
	data, err := Read(path)
	if err != nil {
		return nil, err
	}
	return ParseFile(path, data)
}

// Read reads the policy document at path, refusing one larger than
// MaxFileBytes without reading further.
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("read policy %s: larger than %d bytes", path, MaxFileBytes)
	}
	return data, nil
}

// ParseFile decodes data, read from the file at path, into a policy whose
// relative references (JWKS files, secrets) resolve against the file's
// directory.
func ParseFile(path string, data []byte) (*policy.Policy, error) {
	p, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	abs, aerr := filepath.Abs(filepath.Dir(path))
	if aerr != nil {
		abs = filepath.Dir(path)
	}
	p.BaseDir = abs
	return p, nil
}

// Parse decodes a policy document. JSON is YAML, so one parser serves both.
// name is used in error messages.
func Parse(name string, data []byte) (*policy.Policy, error) {
	if len(data) > MaxFileBytes {
		return nil, policy.Errors{{File: name, Message: fmt.Sprintf("document larger than %d bytes", MaxFileBytes)}}
	}
	root, err := ParseYAML(data)
	if err != nil {
		return nil, policy.Errors{{File: name, Message: err.Error()}}
	}
	return policy.Decode(root, name, data)
}

// ParseYAML converts a YAML document into a policy.Node tree.
func ParseYAML(data []byte) (*policy.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, cleanYAMLError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return &policy.Node{Kind: policy.Null, Tag: "null", Line: 1, Column: 1}, nil
	}
	return convert(doc.Content[0], 0)
}

// cleanYAMLError turns "yaml: line 3: did not find expected key" into
// "3: did not find expected key" so that it reads like our other errors.
func cleanYAMLError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if strings.HasPrefix(msg, "line ") {
		msg = strings.TrimPrefix(msg, "line ")
	}
	return fmt.Errorf("%s", msg)
}

const maxDepth = 64

func convert(y *yaml.Node, depth int) (*policy.Node, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%d:%d: document nested deeper than %d levels", y.Line, y.Column, maxDepth)
	}
	n := &policy.Node{Line: y.Line, Column: y.Column}
	switch y.Kind {
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			n.Kind, n.Tag = policy.Null, "null"
			return n, nil
		}
		return convert(y.Content[0], depth+1)
	case yaml.AliasNode:
		// Aliases could multiply a small document into a huge tree
		// ("billion laughs"); a policy has no need for them.
		return nil, fmt.Errorf("%d:%d: YAML aliases are not allowed in a policy", y.Line, y.Column)
	case yaml.MappingNode:
		n.Kind = policy.Mapping
		for i := 0; i+1 < len(y.Content); i += 2 {
			k, v := y.Content[i], y.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("%d:%d: mapping keys must be plain strings", k.Line, k.Column)
			}
			if k.Tag == "!!merge" {
				return nil, fmt.Errorf("%d:%d: YAML merge keys are not allowed in a policy", k.Line, k.Column)
			}
			val, err := convert(v, depth+1)
			if err != nil {
				return nil, err
			}
			n.Pairs = append(n.Pairs, policy.Pair{
				Key:   &policy.Node{Kind: policy.Scalar, Tag: "str", Value: k.Value, Line: k.Line, Column: k.Column},
				Value: val,
			})
		}
	case yaml.SequenceNode:
		n.Kind = policy.Sequence
		for _, it := range y.Content {
			v, err := convert(it, depth+1)
			if err != nil {
				return nil, err
			}
			n.Items = append(n.Items, v)
		}
	case yaml.ScalarNode:
		n.Kind = policy.Scalar
		n.Value = y.Value
		switch y.ShortTag() {
		case "!!str", "!!binary", "!!timestamp":
			n.Tag = "str"
		case "!!int":
			n.Tag = "int"
		case "!!float":
			n.Tag = "float"
		case "!!bool":
			n.Tag = "bool"
			n.Value = strings.ToLower(y.Value)
		case "!!null":
			n.Kind, n.Tag = policy.Null, "null"
		default:
			n.Tag = "str"
		}
	}
	return n, nil
}
