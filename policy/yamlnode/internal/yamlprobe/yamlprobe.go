// Package yamlprobe is what yamlnode's tests run to compare trees: the
// Yaegi test runs it compiled and interpreted by Yaegi v0.16.1 (as the
// Traefik plugin runs) and requires the same answers, and the yaml/v3
// differential tests render both trees with Dump. Results are flattened to
// strings, which is all that crosses the interpreter's boundary reliably.
package yamlprobe

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/yamlnode"
)

// Dump renders a tree one node per line — position, kind, tag and value —
// so that two trees compare as text and a difference reads as a diff.
func Dump(n *policy.Node) string {
	var b strings.Builder
	dump(&b, n, "")
	return b.String()
}

func dump(b *strings.Builder, n *policy.Node, indent string) {
	b.WriteString(indent + pos(n) + " " + n.Kind.String())
	if n.Kind == policy.Scalar || n.Kind == policy.Null {
		b.WriteString(" " + n.Tag + " " + strconv.Quote(n.Value))
	}
	b.WriteString("\n")
	for i := 0; i < len(n.Pairs); i++ {
		k := n.Pairs[i].Key
		b.WriteString(indent + "  key " + pos(k) + " " + k.Tag + " " + strconv.Quote(k.Value) + "\n")
		dump(b, n.Pairs[i].Value, indent+"    ")
	}
	for i := 0; i < len(n.Items); i++ {
		dump(b, n.Items[i], indent+"  ")
	}
}

func pos(n *policy.Node) string {
	return strconv.Itoa(n.Line) + ":" + strconv.Itoa(n.Column)
}

// Tree reads data with yamlnode and returns its Dump, or the error.
func Tree(data []byte) string {
	n, err := yamlnode.Parse(data)
	if err != nil {
		return "error: " + err.Error()
	}
	return Dump(n)
}

// Decode reads data with yamlnode, decodes it with policy.Decode and
// returns the policy as JSON, or the errors.
func Decode(name string, data []byte) string {
	n, err := yamlnode.Parse(data)
	if err != nil {
		return "error: " + err.Error()
	}
	p, err := policy.Decode(n, name, data)
	if err != nil {
		return "error: " + err.Error()
	}
	out, err := json.Marshal(p)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(out)
}
