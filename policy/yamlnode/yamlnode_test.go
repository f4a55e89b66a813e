package yamlnode_test

import (
	"strings"
	"testing"

	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/yamlnode"
)

// features are documents in every form the reader supports; each must read
// to yaml/v3's tree.
var features = []struct{ name, doc string }{
	{"empty", ""},
	{"only comments", "# nothing here\n\n   # still nothing\n"},
	{"block mapping", "apiVersion: contentguard.dev/v1\nkind: EdgePolicy\nmetadata:\n  name: x\n"},
	{"null values", "a:\nb:\nc: 1\nd:"},
	{"null in nested block", "spec:\n  a:\nb: 1"},
	{"CRLF", "a: 1\r\nb:\r\n  - x\r\n  - y\r\n"},
	{"CR alone", "a: 1\rb: 2\r"},
	{"byte order mark", "\ufeffa: 1\nb: 2\n"},
	{"trailing spaces and tabs", "a: 1   \nb: 2\t\nc:\t3\n"},
	{"quoted keys", "\"a\": 1\n'b': 2\n\"c d\": {\"e\":1,\"f\":[1,2]}\n"},
	{"JSON", `{"a":1,"b":[true,false,null],"c":{"d":"e"},"f":-1.5e3}`},
	{"flow over lines", "a: [\n  1,\n  2,\n]\nb: {\n  c: 1,\n  d: [x,\n     y],\n}\n"},
	{"nested flow", "a: [[1, 2], [3, [4, {x: y}]], {}, []]\nb: {a: 1, b: [x, y]}"},
	{"flow in block list", "- [a, b]\n- {c: d}\n- []\n- {}"},
	{"flow nulls", "{a: , b, c: }"},
	{"flow pairs in a list", "[a: 1, b: , c, {d: e}]"},
	{"flow spacing", "a: [1 , 2 ,3]\nb: [ ]\nc: { }\nd: [x:y, http://h/p]\ne: {x:y}"},
	{"literal", "a: |\n  line1\n  line2\n\n  line4\n\n\nb: 1"},
	{"folded", "a: >\n  folded\n  text\n\n  para\n    more\n    indented\n  back\n"},
	{"strip", "a: |-\n  x\n\n"},
	{"keep", "a: |+\n  x\n\n\nb: 2"},
	{"folded keep", "a: >+\n  x\n\n"},
	{"folded strip", "a: >-\n  x\n  y"},
	{"indentation indicator", "a: |2\n    two\n   one\n"},
	{"indicators reversed", "a: >1-\n  x\n"},
	{"block scalars in a list", "- |\n  item\n- >\n  item2\n"},
	{"block scalar at the end", "a: |\n  no newline at end"},
	{"block scalar leading blank", "a: |\n\n  leading blank\n"},
	{"block scalar comment", "a: |   # comment\n  x\n"},
	{"block scalar nested", "a:\n  b: |\n    deep\n  c: 1"},
	{"block scalar root", "--- |\n  text\n"},
	{"plain over lines", "a: plain\n  continued\n  lines\n\n  para"},
	{"plain with indicators inside", "a: http://x.y/z?q=1#frag\nb: b#c\nc: x:y\nd: -1\ne: :x\nf: ?y\ng: --"},
	{"comments", "a: x # comment\n# line\nb: y\nc: \"q\" # after quotes\nd: 'y'# tight"},
	{"comments in blocks", "a:\n  # first\n  b: 1 # c\n  # indented comment\nc: 2"},
	{"single quotes", "a: 'it''s'\nb: 'single\n  fold\n\n  x'\nc: ''"},
	{"double-quoted escapes", `a: "tab\there\nnew \"q\" \\ \x41 \u263A \U0001F600 \e\0 \N\_\L\P \a\b\v\f\r\ \'"`},
	{"double quotes over lines", "a: \"line1\n  line2\n\n  line3\"\nb: \"escaped \\\n  break\"\nc: \"\""},
	{"indentless list", "a:\n- x\n- y\nb:\n- z"},
	{"indentless list with nulls", "a:\n- x\n-\nb: 1"},
	{"mappings in a list", "- a: 1\n  b: 2\n- c: 3"},
	{"lists in a list", "- - x\n  - y\n- - z\n- - - - deep"},
	{"list under a list key", "- a:\n  - b\n  - c\n- d"},
	{"list of nulls", "-\n-\n- x"},
	{"wide indentation", "-   a\n-   b:  1\n    c:  2"},
	{"mixed", "a:\n  - b:\n      c: 1\n  - d"},
	{"document start", "---\na: 1"},
	{"document start and end", "--- # comment\na: 1\n...\n# trailing comment\n"},
	{"empty explicit document", "---\n...\n"},
	{"document start only", "---"},
	{"document start with a value", "--- x"},
	{"document start with flow", "--- [1, 2]"},
	{"root scalar", "x"},
	{"root quoted", `"quoted root"`},
	{"scalar types", "i: 42\nn: -17\np: +5\no: 0o17\nh: 0x1F\nu: 1_000\nold: 0755\nb: 0b101\nbig: 99999999999999999999\nf: 3.14\ne: 1e3\nE: 2.5E-3\nd: .5\nm: -.5\ninf: .inf\nninf: -.Inf\nnan: .NaN\nt: true\nT: True\nF: FALSE\nn1: null\nn2: ~\nn3: Null\ny: yes\nno: no\non: on\ntime: 1:30\ndate: 2001-12-14\nts: 2001-12-14T21:59:43.10-05:00\nstr: 08\nx: 1.\nz: 0.\nneg0: -0\nhex: 0xg\nhuge: 1e999\nmerge: <<"},
	{"keys are strings", "1: a\ntrue: b\nnull: c\n~: d\n\"\": e\n1.5: f"},
	{"unicode", "é: ü\nkey: 日本語\nnext: [α, β]\nemoji: \"😀\" # 😀\nafter: 1"},
	{"key with spaces", "key with spaces: value with spaces"},
}

// refusals are documents the reader refuses, with the message and where.
var refusals = []struct{ name, doc, want, at string }{
	{"anchor", "a: &x 1", "YAML anchors and aliases are not allowed in a policy", "1:4"},
	{"alias", "a: 1\nb: *x", "YAML anchors and aliases are not allowed in a policy", "2:4"},
	{"billion laughs", "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]", "anchors and aliases are not allowed", "1:4"},
	{"merge key", "base: {a: 1}\n<<: {b: 2}", "YAML merge keys are not allowed in a policy", "2:1"},
	{"tag", "a: !!str 1", "YAML tags are not allowed in a policy", "1:4"},
	{"local tag", "a: !secret x", "YAML tags are not allowed in a policy", "1:4"},
	{"directive", "%YAML 1.2\n---\na: 1", "YAML directives (%YAML, %TAG) are not allowed in a policy", "1:1"},
	{"explicit key", "? a\n: 1", "explicit mapping keys ('? ') are not allowed in a policy", "1:1"},
	{"explicit key in flow", "{? a: 1}", "explicit mapping keys", "1:2"},
	{"list as key", "[a, b]: c", "a mapping key must be a string, not a list", "1:1"},
	{"mapping as key", "x:\n  {a: 1}: c", "a mapping key must be a string, not a mapping", "2:3"},
	{"duplicate key", "a: 1\nb: 2\na: 3", `mapping key "a" already defined at line 1`, "3:1"},
	{"duplicate quoted key", "{a: 1, \"a\": 2}", `mapping key "a" already defined at line 1`, "1:8"},
	{"duplicate in a big mapping", "k1: 1\nk2: 2\nk3: 3\nk4: 4\nk5: 5\nk6: 6\nk7: 7\nk8: 8\nk9: 9\nk3: again", `mapping key "k3" already defined at line 3`, "10:1"},
	{"second document", "a: 1\n---\nb: 2", "a policy is one YAML document; found the start of a second one", "2:1"},
	{"second document after end", "a: 1\n...\n---\nb: 2", "found the start of a second one", "3:1"},
	{"content after document end", "a: 1\n...\nb: 2", "unexpected content after the end of the document", "3:1"},
	{"content after a flow root", "{a: 1}\nx: 2", "unexpected content after the end of the document", "2:1"},
	{"two flow roots", "[a] [b]", "unexpected content after the end of the document", "1:5"},
	{"tab indentation", "a:\n\tb: 1", "found a tab character where a space is expected; indent YAML with spaces", "2:1"},
	{"tab after a list dash", "- \ta", "found a tab character where a space is expected", "1:3"},
	{"tab in a plain scalar's indentation", "a: b\n\tc", "found a tab character that violates indentation", "2:1"},
	{"tab in a block scalar's indentation", "a: |\n  x\n\t\n  y", "found a tab character where an indentation space is expected", "3:1"},
	{"unclosed double quote", "a: \"open", "quoted string is not closed", "1:4"},
	{"unclosed single quote", "a: 'open\nb: 2", "quoted string is not closed", "1:4"},
	{"document marker in quotes", "a: \"x\n---\n\"", "found a document marker inside a quoted string that starts at 1:4", "2:1"},
	{"unclosed list", "a: [1, 2\n", "did not find expected ',' or ']' (the list that starts at 1:4 is not closed)", "2:1"},
	{"unclosed mapping", "a: {b: 1", "did not find expected ',' or '}' (the mapping that starts at 1:4 is not closed)", "2:1"},
	{"missing comma", "a: {b: 1 c: 2}", "did not find expected ',' or '}' (the mapping starts at 1:4)", "1:11"},
	{"block list in flow", "routes: [\n  - a\n", "did not find expected node content", "2:3"},
	{"value after value", "a: b: c", "mapping values are not allowed in this context", "1:5"},
	{"bad indentation", "a:\n  b: 1\n c: 2", "did not find expected key; check the indentation (the mapping starts at 1:1)", "3:2"},
	{"text after a quoted value", "a: 'x'y", "did not find expected key; unexpected text after the value before it", "1:7"},
	{"list then key", "- a\nb: 1", "did not find expected '-' indicator; check the indentation (the list starts at 1:1)", "2:1"},
	{"list item as a value", "a: - b", "block sequence entries are not allowed in this context", "1:4"},
	{"key without colon", "a: 1\nb\nc: 2", "could not find expected ':' after this key", "2:1"},
	{"multi-line key", "\"multi\n line key\": 1", "mapping values are not allowed in this context", "2:11"},
	{"unknown escape", `a: "\q"`, "unknown escape sequence in a double-quoted string", "1:5"},
	{"short hex escape", `a: "\x4"`, "escape sequence needs 2 hexadecimal digits", "1:5"},
	{"surrogate escape", `a: "\ud800"`, "escape sequence is not a valid Unicode character", "1:5"},
	{"zero indentation indicator", "a: |0\n  x", "a block scalar's indentation indicator must be 1 to 9", "1:5"},
	{"text after block indicator", "a: | x\n  y", "did not find expected comment or line break after a block scalar indicator", "1:6"},
	{"reserved character", "a: @foo", "found character '@' that cannot start any token; quote the value", "1:4"},
	{"backquote", "a: `foo`", "found character '`' that cannot start any token", "1:4"},
	{"document end first", "...", "did not find expected node content", "1:1"},
	{"control character", "a: \x01", `control character '\x01' is not allowed`, "1:4"},
	{"DEL", "a: b\x7f", `control character '\x7f' is not allowed`, "1:5"},
	{"C1 control", "a: \u0090", `control character '\u0090' is not allowed`, "1:4"},
	{"invalid UTF-8", "a: 1\nb: \xff", "invalid UTF-8", "2:4"},
	{"UTF-16", "\xff\xfea\x00", "document is UTF-16; a policy must be UTF-8", "1:1"},
	{"line separator", "a: x\u2028y", "(a Unicode line break) is not allowed", "1:5"},
	{"next line", "a: x\u0085y", "(a Unicode line break) is not allowed", "1:5"},
	{"byte order mark inside", "a: 1\n\ufeffb: 2", "byte order mark inside the document", "2:1"},
	{"columns count characters", "é: [ü, ", "did not find expected node content", "2:1"},
}

// TestFeaturesMatchYAMLv3: every supported form reads to yaml/v3's tree.
func TestFeaturesMatchYAMLv3(t *testing.T) {
	for _, c := range features {
		t.Run(c.name, func(t *testing.T) {
			want, err := oracle([]byte(c.doc))
			if err != nil {
				t.Fatalf("yaml/v3 refuses it: %v", err)
			}
			got, err := yamlnode.Parse([]byte(c.doc))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if w, g := dump(want), dump(got); w != g {
				t.Fatalf("trees differ\nyaml/v3:\n%s\nyamlnode:\n%s", w, g)
			}
		})
	}
}

// TestRefusals: what the reader does not read, it refuses with a message
// at the offending line and column — never a tree.
func TestRefusals(t *testing.T) {
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			n, err := yamlnode.Parse([]byte(c.doc))
			if err == nil {
				t.Fatalf("accepted:\n%s", dump(n))
			}
			if n != nil {
				t.Fatal("a refusal returned a tree")
			}
			e, ok := err.(*yamlnode.Error)
			if !ok {
				t.Fatalf("error is %T", err)
			}
			if !strings.Contains(e.Message, c.want) || !strings.HasPrefix(e.Error(), c.at+": ") {
				t.Fatalf("got %q, want %q at %s", e.Error(), c.want, c.at)
			}
		})
	}
}

// TestDeliberateDifferences pins down where the reader and yaml/v3 part
// on purpose (docs/policy.md lists them).
func TestDeliberateDifferences(t *testing.T) {
	// yaml/v3 reads the first document and silently drops the rest, even
	// text that is not a document at all: a policy must not lose half of
	// itself without a word.
	for _, doc := range []string{"a: 1\n---\nb: 2", "{a: 1}\nb: 2", "[a] [b]", "a: 1\n...\nb: 2"} {
		if _, err := oracle([]byte(doc)); err != nil {
			t.Fatalf("yaml/v3 refuses %q now (%v): update the docs", doc, err)
		}
		if _, err := yamlnode.Parse([]byte(doc)); err == nil {
			t.Errorf("read %q", doc)
		}
	}
	// "\/" is a YAML 1.2 (and JSON) escape that yaml/v3 does not know.
	doc := `a: "http:\/\/x"`
	if _, err := oracle([]byte(doc)); err == nil {
		t.Fatal("yaml/v3 reads \\/ now: drop the difference")
	}
	n, err := yamlnode.Parse([]byte(doc))
	if err != nil || n.Get("a").Value != "http://x" {
		t.Fatalf("\\/ not read as /: %v", err)
	}
}

// TestDepth: 64 levels of nesting read, 65 do not, in block and flow
// form, and a hostile document of thousands of brackets fails fast.
func TestDepth(t *testing.T) {
	flow := func(n int) string { return strings.Repeat("[", n) + "x" + strings.Repeat("]", n) }
	block := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString(strings.Repeat(" ", i) + "k:\n")
		}
		b.WriteString(strings.Repeat(" ", n) + "x")
		return b.String()
	}
	for _, c := range []struct {
		name string
		doc  string
		ok   bool
	}{
		{"flow 63 + scalar", flow(63), true},
		{"flow 64 + scalar", flow(64), false},
		{"block 63 + scalar", block(63), true},
		{"block 64 + scalar", block(64), false},
		{"hostile brackets", strings.Repeat("[", 1<<20), false},
		{"hostile indentation", block(1000), false},
	} {
		_, werr := oracle([]byte(c.doc))
		_, err := yamlnode.Parse([]byte(c.doc))
		if (err == nil) != c.ok || (werr == nil) != c.ok {
			t.Errorf("%s: yamlnode %v, yaml/v3 %v; want accepted=%v", c.name, err, werr, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "document nested deeper than 64 levels") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestSize: a document over MaxBytes is refused before it is read.
func TestSize(t *testing.T) {
	doc := []byte("a: " + strings.Repeat("x", yamlnode.MaxBytes))
	if _, err := yamlnode.Parse(doc); err == nil || !strings.Contains(err.Error(), "document larger than 4194304 bytes") {
		t.Fatalf("got %v", err)
	}
	if _, err := yamlnode.Parse(doc[:yamlnode.MaxBytes]); err != nil {
		t.Fatalf("a document of MaxBytes refused: %v", err)
	}
}

// TestEmptyDocument: nothing, or only comments, is a null at 1:1, which
// policy.Decode reports as "expected a mapping".
func TestEmptyDocument(t *testing.T) {
	for _, doc := range []string{"", "# c\n", "\n\n"} {
		n, err := yamlnode.Parse([]byte(doc))
		if err != nil || n.Kind != policy.Null || n.Line != 1 || n.Column != 1 {
			t.Errorf("%q: %+v %v", doc, n, err)
		}
	}
}

// TestLongKeys: an implicit key must end within 1024 characters (counted
// in characters, not bytes); the reader draws the line where yaml/v3 does.
func TestLongKeys(t *testing.T) {
	for _, n := range []int{1022, 1023, 1024, 1025} {
		for _, doc := range []string{
			strings.Repeat("k", n) + ": v",
			"a: 1\n" + strings.Repeat("é", n) + ": v",
			"{" + strings.Repeat("k", n) + ": v}",
			"- \"" + strings.Repeat("k", n) + "\": v",
			"[" + strings.Repeat("k", n) + ": v]",
		} {
			want, werr := oracle([]byte(doc))
			got, err := yamlnode.Parse([]byte(doc))
			if (werr == nil) != (err == nil) {
				t.Errorf("%d-character key in %.12q…: yaml/v3 %v, yamlnode %v", n, doc, werr, err)
			} else if err == nil && dump(want) != dump(got) {
				t.Errorf("%d-character key in %.12q…: trees differ", n, doc)
			}
		}
	}
}
