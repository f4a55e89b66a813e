// Package policyfile reads contentguard policies from YAML or JSON files and
// holds the embedded default policy. It is the native front-end of package
// policy: it turns YAML into policy's position-carrying Node tree, so that
// every error names file:line:col, and leaves all checking to policy.Decode.
package policyfile

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
	p, _, err := LoadTree(path)
	return p, err
}

// LoadTree is Load that also returns the document's Node tree (nil if it
// could not be read), for tools that position findings of their own.
func LoadTree(path string) (*policy.Policy, *policy.Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	data := make([]byte, 0, 8192)
	buf := make([]byte, 8192)
	for {
		n, rerr := f.Read(buf)
		data = append(data, buf[:n]...)
		if len(data) > MaxFileBytes {
			return nil, nil, fmt.Errorf("read policy %s: larger than %d bytes", path, MaxFileBytes)
		}
		if rerr != nil {
			break
		}
	}
	p, root, err := parse(path, data)
	if err != nil {
		return nil, root, err
	}
	abs, aerr := filepath.Abs(filepath.Dir(path))
	if aerr != nil {
		abs = filepath.Dir(path)
	}
	p.BaseDir = abs
	return p, root, nil
}

// Parse decodes a policy document. JSON is YAML, so one parser serves both.
// name is used in error messages.
func Parse(name string, data []byte) (*policy.Policy, error) {
	p, _, err := parse(name, data)
	return p, err
}

func parse(name string, data []byte) (*policy.Policy, *policy.Node, error) {
	if len(data) > MaxFileBytes {
		return nil, nil, policy.Errors{{File: name, Message: fmt.Sprintf("document larger than %d bytes", MaxFileBytes)}}
	}
	root, err := ParseYAML(data)
	if err != nil {
		e := policy.Error{File: name, Message: err.Error()}
		var se *SyntaxError
		if errors.As(err, &se) {
			e.Line, e.Column, e.Message = se.Line, se.Column, se.Message
		}
		return nil, nil, policy.Errors{e}
	}
	p, err := policy.Decode(root, name, data)
	return p, root, err
}

// SyntaxError is a document ParseYAML cannot read, with its position.
type SyntaxError struct {
	Line, Column int
	Message      string
}

func (e *SyntaxError) Error() string {
	return strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column) + ": " + e.Message
}

// ParseYAML converts a YAML document into a policy.Node tree. A document
// it cannot read is a *SyntaxError.
func ParseYAML(data []byte) (*policy.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxError(data, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return &policy.Node{Kind: policy.Null, Tag: "null", Line: 1, Column: 1}, nil
	}
	return convert(doc.Content[0], 0)
}

// syntaxError positions a YAML error. The parser names only a line ("yaml:
// line 3: did not find expected key"); the column is that line's first tab
// when it has one in its indentation (the usual culprit, which YAML does
// not allow there), else its first character that is not a space.
func syntaxError(data []byte, err error) *SyntaxError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &SyntaxError{Line: 1, Column: 1, Message: msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		num, text, found := strings.Cut(rest, ": ")
		if n, convErr := strconv.Atoi(num); found && convErr == nil && n > 0 {
			e.Line, e.Message = n, text
		}
	}
	lines := strings.Split(string(data), "\n")
	if e.Line > len(lines) {
		e.Line = len(lines)
	}
	text := lines[e.Line-1]
	indent := len(text) - len(strings.TrimLeft(text, " \t"))
	if tab := strings.IndexByte(text[:indent], '\t'); tab >= 0 {
		e.Column = tab + 1
	} else if indent < len(strings.TrimRight(text, " \t\r")) {
		e.Column = indent + 1
	}
	return e
}

const maxDepth = 64

func convert(y *yaml.Node, depth int) (*policy.Node, error) {
	if depth > maxDepth {
		return nil, &SyntaxError{Line: y.Line, Column: y.Column, Message: fmt.Sprintf("document nested deeper than %d levels", maxDepth)}
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
		return nil, &SyntaxError{Line: y.Line, Column: y.Column, Message: "YAML aliases are not allowed in a policy"}
	case yaml.MappingNode:
		n.Kind = policy.Mapping
		for i := 0; i+1 < len(y.Content); i += 2 {
			k, v := y.Content[i], y.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, &SyntaxError{Line: k.Line, Column: k.Column, Message: "mapping keys must be plain strings"}
			}
			if k.Tag == "!!merge" {
				return nil, &SyntaxError{Line: k.Line, Column: k.Column, Message: "YAML merge keys are not allowed in a policy"}
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
