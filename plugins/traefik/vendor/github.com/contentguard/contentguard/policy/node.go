package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Kind is the kind of a Node.
type Kind int

const (
	Null Kind = iota
	Scalar
	Mapping
	Sequence
)

func (k Kind) String() string {
	switch k {
	case Scalar:
		return "scalar"
	case Mapping:
		return "mapping"
	case Sequence:
		return "list"
	}
	return "null"
}

// A Node is one value of a policy document with its position in the source.
// Front-ends (YAML in package policyfile, JSON here) produce a tree of Nodes;
// Decode turns that tree into a Policy. Keeping the tree format-neutral is what
// lets the same strict decoder run natively and under Yaegi, where the YAML
// library cannot be interpreted.
type Node struct {
	Kind   Kind
	Tag    string // for scalars: "str", "int", "float", "bool" or "null"
	Value  string // for scalars: the literal text
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	Pairs  []Pair // for mappings, in source order
	Items  []*Node
}

// Pair is one key and value of a mapping.
type Pair struct {
	Key   *Node
	Value *Node
}

// Get returns the value of key in a mapping, or nil.
func (n *Node) Get(key string) *Node {
	if n == nil || n.Kind != Mapping {
		return nil
	}
	for i := 0; i < len(n.Pairs); i++ {
		if n.Pairs[i].Key.Value == key {
			return n.Pairs[i].Value
		}
	}
	return nil
}

// ParseJSON reads a policy document written as JSON into a Node tree, with
// line and column positions computed from byte offsets.
func ParseJSON(data []byte) (*Node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p := &jsonParser{dec: dec, data: data}
	n, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		line, col := lineCol(data, int(dec.InputOffset()))
		return nil, fmt.Errorf("%d:%d: unexpected data after the document", line, col)
	}
	return n, nil
}

type jsonParser struct {
	dec  *json.Decoder
	data []byte
}

// maxDepth bounds nesting so a hostile document cannot exhaust the stack.
const maxDepth = 64

func (p *jsonParser) pos() (int, int) {
	off := int(p.dec.InputOffset())
	// InputOffset points after the token just read; step back over
	// whitespace and separators to the token's start for a useful position.
	for off > 0 && off <= len(p.data) {
		c := p.data[off-1]
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == ',' || c == ':' {
			off--
			continue
		}
		break
	}
	return lineCol(p.data, off)
}

func (p *jsonParser) value(depth int) (*Node, error) {
	if depth > maxDepth {
		line, col := p.pos()
		return nil, fmt.Errorf("%d:%d: document nested deeper than %d levels", line, col, maxDepth)
	}
	before := int(p.dec.InputOffset())
	tok, err := p.dec.Token()
	if err != nil {
		line, col := lineCol(p.data, before)
		return nil, fmt.Errorf("%d:%d: invalid JSON: %v", line, col, err)
	}
	line, col := lineCol(p.data, skipSpace(p.data, before))
	n := &Node{Line: line, Column: col}
	// Type assertions one by one, not a type switch: under Yaegi a type
	// switch over the decoder's native token values misses bool and
	// json.Number, and every boolean and number would decode as null.
	if delim, ok := tok.(json.Delim); ok {
		if err := p.container(n, delim, depth); err != nil {
			return nil, err
		}
		return n, nil
	}
	if s, ok := tok.(string); ok {
		n.Kind = Scalar
		n.Tag = "str"
		n.Value = s
		return n, nil
	}
	if num, ok := tok.(json.Number); ok {
		n.Kind = Scalar
		n.Value = string(num)
		n.Tag = "float"
		if _, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			n.Tag = "int"
		}
		return n, nil
	}
	// What is left is true, false or null. Yaegi does not match even a
	// plain tok.(bool) assertion, so read the literal from the source.
	if start := skipSpace(p.data, before); start < len(p.data) && (p.data[start] == 't' || p.data[start] == 'f') {
		n.Kind = Scalar
		n.Tag = "bool"
		n.Value = strconv.FormatBool(p.data[start] == 't')
		return n, nil
	}
	n.Kind = Null
	n.Tag = "null"
	return n, nil
}

// container reads the members of an object or the items of an array.
func (p *jsonParser) container(n *Node, delim json.Delim, depth int) error {
	if delim == '{' {
		n.Kind = Mapping
		for p.dec.More() {
			kb := int(p.dec.InputOffset())
			kt, err := p.dec.Token()
			if err != nil {
				l, c := lineCol(p.data, kb)
				return fmt.Errorf("%d:%d: invalid JSON: %v", l, c, err)
			}
			ks, _ := kt.(string)
			kl, kc := lineCol(p.data, skipSpace(p.data, kb))
			key := &Node{Kind: Scalar, Tag: "str", Value: ks, Line: kl, Column: kc}
			v, err := p.value(depth + 1)
			if err != nil {
				return err
			}
			n.Pairs = append(n.Pairs, Pair{Key: key, Value: v})
		}
	} else {
		n.Kind = Sequence
		for p.dec.More() {
			v, err := p.value(depth + 1)
			if err != nil {
				return err
			}
			n.Items = append(n.Items, v)
		}
	}
	if _, err := p.dec.Token(); err != nil {
		l, c := p.pos()
		return fmt.Errorf("%d:%d: invalid JSON: %v", l, c, err)
	}
	return nil
}

func skipSpace(data []byte, off int) int {
	for off < len(data) {
		c := data[off]
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == ',' || c == ':' {
			off++
			continue
		}
		break
	}
	return off
}

func lineCol(data []byte, off int) (int, int) {
	if off > len(data) {
		off = len(data)
	}
	line, col := 1, 1
	for i := 0; i < off; i++ {
		if data[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
