package yamlnode_test

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/yamlnode/internal/yamlprobe"
)

// oracle is the reader that policyfile used before this package:
// go.yaml.in/yaml/v3 into a yaml.Node, converted to a policy.Node tree,
// refusing aliases, merge keys, keys that are not scalars and nesting deeper
// than 64 levels. The tests hold the reader to it.
func oracle(data []byte) (*policy.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return &policy.Node{Kind: policy.Null, Tag: "null", Line: 1, Column: 1}, nil
	}
	return convert(doc.Content[0], 1)
}

func convert(y *yaml.Node, depth int) (*policy.Node, error) {
	if depth > 64 {
		return nil, fmt.Errorf("%d:%d: document nested deeper than 64 levels", y.Line, y.Column)
	}
	n := &policy.Node{Line: y.Line, Column: y.Column}
	switch y.Kind {
	case yaml.AliasNode:
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
		case "!!int":
			n.Tag = "int"
		case "!!float":
			n.Tag = "float"
		case "!!bool":
			n.Tag = "bool"
			n.Value = strings.ToLower(y.Value)
		case "!!null":
			n.Kind, n.Tag = policy.Null, "null"
		default: // !!str, !!binary, !!timestamp, !!merge, custom tags
			n.Tag = "str"
		}
	}
	return n, nil
}

// dump renders a tree for comparison.
func dump(n *policy.Node) string { return yamlprobe.Dump(n) }
