package yamlnode

import (
	"strconv"

	"github.com/contentguard/contentguard/policy"
)

// The parser builds the Node tree from the scanner's tokens by recursive
// descent over libyaml's grammar:
//
//	document         ::= DOCUMENT-START? node? DOCUMENT-END*
//	block_mapping    ::= BLOCK-MAPPING-START (KEY key VALUE node?)* BLOCK-END
//	block_sequence   ::= BLOCK-SEQUENCE-START (BLOCK-ENTRY node?)* BLOCK-END
//	indentless_seq   ::= (BLOCK-ENTRY node?)+            (a mapping value)
//	flow_mapping     ::= FLOW-MAPPING-START (entry (FLOW-ENTRY entry)* FLOW-ENTRY?)? FLOW-MAPPING-END
//	flow_sequence    ::= FLOW-SEQUENCE-START (item (FLOW-ENTRY item)* FLOW-ENTRY?)? FLOW-SEQUENCE-END
//
// An omitted value is a null node placed where yaml/v3 places it: just
// after the ':' or '-' in block context, on the ',' or closing bracket
// that follows in flow context.

type parser struct {
	s     *scanner
	depth int // nesting of the node being read; the root is 1
}

func (p *parser) fail(at mark, msg string) { p.s.fail(at, msg) }

func (p *parser) ok() bool { return p.s.err == nil }

func newNode(kind policy.Kind, at mark) *policy.Node {
	return &policy.Node{Kind: kind, Line: at.line + 1, Column: at.col + 1}
}

func (p *parser) document() *policy.Node {
	t := p.s.peek()
	if t.kind == tokStreamEnd {
		// No document at all: only comments and blank lines.
		return &policy.Node{Kind: policy.Null, Tag: "null", Line: 1, Column: 1}
	}
	var root *policy.Node
	if t.kind == tokDocumentStart {
		p.s.take()
		t = p.s.peek()
		if t.kind == tokDocumentStart || t.kind == tokDocumentEnd || t.kind == tokStreamEnd {
			root = p.empty(t.start)
		} else {
			root = p.node(true, false)
		}
	} else {
		root = p.node(true, false)
	}
	if !p.ok() {
		return nil
	}
	t = p.s.peek()
	for t.kind == tokDocumentEnd {
		p.s.take()
		t = p.s.peek()
	}
	if t.kind == tokDocumentStart {
		// yaml/v3 reads the first document and ignores the rest; a policy
		// that is two documents is a mistake to report, not to half-read.
		p.fail(t.start, "a policy is one YAML document; found the start of a second one")
	} else if t.kind != tokStreamEnd {
		p.fail(t.start, "unexpected content after the end of the document")
	}
	return root
}

// node reads any node; block allows block collections, indentless a
// sequence at the indentation of the mapping key it is the value of.
func (p *parser) node(block, indentless bool) *policy.Node {
	t := p.s.peek()
	switch t.kind {
	case tokScalar:
		p.s.take()
		return p.scalar(t)
	case tokFlowSequenceStart:
		return p.collection(t, p.flowSequence)
	case tokFlowMappingStart:
		return p.collection(t, p.flowMapping)
	case tokBlockSequenceStart:
		if block {
			return p.collection(t, p.blockSequence)
		}
	case tokBlockMappingStart:
		if block {
			return p.collection(t, p.blockMapping)
		}
	case tokBlockEntry:
		if indentless {
			return p.collection(t, p.indentlessSequence)
		}
		if !block {
			p.fail(t.start, "did not find expected node content: a '- ' list item cannot stand inside [ ] or { }; is a bracket left open?")
			return nil
		}
	}
	p.fail(t.start, "did not find expected node content (a value), found "+describe(t))
	return nil
}

// describe names a token in an error message.
func describe(t token) string {
	switch t.kind {
	case tokStreamEnd:
		return "the end of the document"
	case tokDocumentStart:
		return "'---'"
	case tokDocumentEnd:
		return "'...'"
	case tokBlockEnd:
		return "a line indented less"
	case tokFlowSequenceEnd:
		return "']'"
	case tokFlowMappingEnd:
		return "'}'"
	case tokFlowEntry:
		return "','"
	case tokValue:
		return "':'"
	case tokBlockEntry, tokBlockSequenceStart:
		return "a list"
	case tokKey, tokBlockMappingStart:
		return "a mapping"
	}
	return "a value"
}

// collection reads a mapping or sequence one level deeper.
func (p *parser) collection(t token, read func(token) *policy.Node) *policy.Node {
	p.depth++
	if p.depth > MaxDepth {
		p.fail(t.start, errTooDeep)
		return nil
	}
	n := read(t)
	p.depth--
	if !p.ok() {
		return nil
	}
	return n
}

// leaf checks that a scalar or empty node fits within MaxDepth.
func (p *parser) leaf(at mark) bool {
	if p.depth+1 > MaxDepth {
		p.fail(at, errTooDeep)
		return false
	}
	return true
}

// empty is the null node of an omitted value.
func (p *parser) empty(at mark) *policy.Node {
	if !p.leaf(at) {
		return nil
	}
	n := newNode(policy.Null, at)
	n.Tag = "null"
	return n
}

func (p *parser) scalar(t token) *policy.Node {
	if !p.leaf(t.start) {
		return nil
	}
	n := newNode(policy.Scalar, t.start)
	n.Value = t.value
	n.Tag = "str"
	if t.style == stylePlain {
		n.Kind, n.Tag, n.Value = resolve(t.value)
	}
	return n
}

// key reads a mapping key: a scalar, always a string whatever it looks
// like ("1", "true" and "null" are keys like any other).
func (p *parser) key() *policy.Node {
	t := p.s.peek()
	if t.kind != tokScalar {
		switch t.kind {
		case tokFlowSequenceStart, tokBlockSequenceStart:
			p.fail(t.start, "a mapping key must be a string, not a list")
		case tokFlowMappingStart, tokBlockMappingStart:
			p.fail(t.start, "a mapping key must be a string, not a mapping")
		default:
			p.fail(t.start, "did not find expected node content (a key), found "+describe(t))
		}
		return nil
	}
	p.s.take()
	if t.style == stylePlain && t.value == "<<" {
		p.fail(t.start, "YAML merge keys are not allowed in a policy")
		return nil
	}
	n := newNode(policy.Scalar, t.start)
	n.Tag = "str"
	n.Value = t.value
	return n
}

func (p *parser) blockMapping(start token) *policy.Node {
	n := newNode(policy.Mapping, start.start)
	// The parameter is named, if only "_": Yaegi v0.16.1 mistypes a func
	// literal with an unnamed parameter.
	ok := p.blockEntries(start, tokKey, func(_ token) bool {
		return p.pair(n, tokBlockMappingStart)
	})
	if !ok {
		return nil
	}
	return p.uniqueKeys(n)
}

func (p *parser) blockSequence(start token) *policy.Node {
	n := newNode(policy.Sequence, start.start)
	ok := p.blockEntries(start, tokBlockEntry, func(t token) bool {
		return add(n, p.entry(t, false))
	})
	if !ok {
		return nil
	}
	return n
}

// blockEntries reads the entries of a block collection, each starting with
// a token of kind want (KEY or '-'), up to its BLOCK-END.
func (p *parser) blockEntries(start token, want tokenKind, read func(token) bool) bool {
	p.s.take()
	for p.ok() {
		t := p.s.peek()
		if t.kind == tokBlockEnd {
			p.s.take()
			return true
		}
		if t.kind != want {
			if want == tokKey {
				p.fail(t.start, "did not find expected key; "+p.why("mapping", start))
			} else {
				p.fail(t.start, "did not find expected '-' indicator; "+p.why("list", start))
			}
			return false
		}
		if !read(t) {
			return false
		}
	}
	return false
}

// indentlessSequence reads a list written at its key's indentation:
//
//	key:
//	- a
//	- b
func (p *parser) indentlessSequence(start token) *policy.Node {
	n := newNode(policy.Sequence, start.start)
	for p.ok() {
		t := p.s.peek()
		if t.kind != tokBlockEntry {
			return n
		}
		if !add(n, p.entry(t, true)) {
			return nil
		}
	}
	return nil
}

// entry reads the node after the '-' of a block sequence, or the null of
// an empty entry.
func (p *parser) entry(dash token, indentless bool) *policy.Node {
	p.s.take()
	next := p.s.peek()
	if next.kind == tokBlockEntry || next.kind == tokBlockEnd || indentless && (next.kind == tokKey || next.kind == tokValue) {
		return p.empty(dash.end)
	}
	return p.node(true, false)
}

func (p *parser) flowSequence(start token) *policy.Node {
	n := newNode(policy.Sequence, start.start)
	ok := p.flowEntries(start, tokFlowSequenceEnd, func(t token) bool {
		if t.kind == tokKey {
			return add(n, p.collection(t, p.flowPair))
		}
		return add(n, p.node(false, false))
	})
	if !ok {
		return nil
	}
	return n
}

// flowPair reads "key: value" written as an item of a flow sequence, which
// YAML reads as a mapping of one pair.
func (p *parser) flowPair(start token) *policy.Node {
	n := newNode(policy.Mapping, start.start)
	if !p.pair(n, tokFlowSequenceStart) {
		return nil
	}
	return n
}

func (p *parser) flowMapping(start token) *policy.Node {
	n := newNode(policy.Mapping, start.start)
	ok := p.flowEntries(start, tokFlowMappingEnd, func(t token) bool {
		if t.kind != tokKey {
			// {a, b: 1} reads a with a null value, as YAML does.
			key := p.key()
			return key != nil && addPair(n, key, p.empty(p.s.peek().start))
		}
		return p.pair(n, tokFlowMappingStart)
	})
	if !ok {
		return nil
	}
	return p.uniqueKeys(n)
}

// flowEntries reads the entries of a flow collection, separated by ',' and
// with one ',' allowed before the closing end token.
func (p *parser) flowEntries(start token, end tokenKind, read func(token) bool) bool {
	p.s.take()
	for first := true; p.ok(); first = false {
		t := p.s.peek()
		if t.kind == end {
			p.s.take()
			return true
		}
		if !first {
			if t.kind != tokFlowEntry {
				if end == tokFlowSequenceEnd {
					p.fail(t.start, "did not find expected ',' or ']' "+unclosed(t, "list", start))
				} else {
					p.fail(t.start, "did not find expected ',' or '}' "+unclosed(t, "mapping", start))
				}
				return false
			}
			p.s.take()
			t = p.s.peek()
			if t.kind == end {
				p.s.take()
				return true
			}
		}
		if !read(t) {
			return false
		}
	}
	return false
}

// why explains a block collection that cannot go on with t: text after a
// value on the same line, or a line indented to no collection.
func (p *parser) why(what string, start token) string {
	t := p.s.peek()
	if t.kind != tokStreamEnd && t.start.line == p.s.lastEnd.line {
		return "unexpected text after the value before it"
	}
	return "check the indentation (the " + what + " starts at " + position(start.start) + ")"
}

func unclosed(t token, what string, start token) string {
	if t.kind == tokStreamEnd {
		return "(the " + what + " that starts at " + position(start.start) + " is not closed)"
	}
	return "(the " + what + " starts at " + position(start.start) + ")"
}

// pair takes the KEY token in front of a key, then reads the key and its
// value into the mapping n.
func (p *parser) pair(n *policy.Node, in tokenKind) bool {
	p.s.take()
	key := p.key()
	return key != nil && addPair(n, key, p.value(in))
}

// value reads a mapping value after its key: the ':' (the scanner inserts
// KEY only in front of a key followed by one), then a node or, when the
// entry ends there, the null of an omitted value. yaml/v3 puts that null
// after the ':' in a block mapping, on the ':' in a pair of a flow
// sequence, and on the ',' or '}' that follows in a flow mapping.
func (p *parser) value(in tokenKind) *policy.Node {
	colon := p.s.peek()
	p.s.take()
	next := p.s.peek()
	switch in {
	case tokBlockMappingStart:
		if next.kind == tokKey || next.kind == tokValue || next.kind == tokBlockEnd {
			return p.empty(colon.end)
		}
		return p.node(true, true)
	case tokFlowSequenceStart:
		if next.kind == tokFlowEntry || next.kind == tokFlowSequenceEnd {
			return p.empty(colon.start)
		}
	case tokFlowMappingStart:
		if next.kind == tokFlowEntry || next.kind == tokFlowMappingEnd {
			return p.empty(next.start)
		}
	}
	return p.node(false, false)
}

// add appends item to the sequence n, unless reading it failed.
func add(n, item *policy.Node) bool {
	if item == nil {
		return false
	}
	n.Items = append(n.Items, item)
	return true
}

// addPair appends key and value to the mapping n, unless reading the value
// failed.
func addPair(n, key, value *policy.Node) bool {
	if value == nil {
		return false
	}
	n.Pairs = append(n.Pairs, policy.Pair{Key: key, Value: value})
	return true
}

// uniqueKeys refuses a mapping that names a key twice, at the second
// occurrence, with yaml/v3's message.
func (p *parser) uniqueKeys(n *policy.Node) *policy.Node {
	pairs := n.Pairs
	if len(pairs) <= 8 {
		for j := 1; j < len(pairs); j++ {
			for i := 0; i < j; i++ {
				if pairs[i].Key.Value == pairs[j].Key.Value {
					p.duplicate(pairs[i].Key, pairs[j].Key)
					return nil
				}
			}
		}
		return n
	}
	first := make(map[string]*policy.Node, len(pairs))
	for j := 0; j < len(pairs); j++ {
		k := pairs[j].Key
		if prev, seen := first[k.Value]; seen {
			p.duplicate(prev, k)
			return nil
		}
		first[k.Value] = k
	}
	return n
}

func (p *parser) duplicate(first, again *policy.Node) {
	p.fail(mark{line: again.Line - 1, col: again.Column - 1},
		"mapping key "+strconv.Quote(again.Value)+" already defined at line "+strconv.Itoa(first.Line))
}
