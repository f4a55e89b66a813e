package yamlnode_test

import (
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/policy/yamlnode"
)

// fragments are pieces of YAML syntax that random documents are made of:
// indicators, indentation, scalars of every style and type, comments.
var fragments = []string{
	"a", "b", "key", "x y", "1", "-2", "0x1F", "08", "1.5", ".inf", "true", "False", "~", "null", "<<", "é", "http://h/p",
	": ", ":", "- ", "-", "? ", ",", ", ", "[", "]", "{", "}", "[]", "{}",
	"\n", "\n", "\n", "\n  ", "\n  ", "\n    ", "\n- ", "\n  - ", "  ", " ", "\t", "\r\n",
	"'s'", "'it''s'", "'", "\"d\"", "\"\\n\\t\\x41\"", "\"", "\\", "\"a\nb\"",
	"|", "|-", "|+", ">", ">-", "|2", "\n  text\n", "\n   more\n\n",
	"#c", " # c", "---", "\n---\n", "...", "\n...\n", "&a ", "*a", "!t ", "%", "@", "`",
}

func randomDocument(r *rand.Rand) string {
	var b strings.Builder
	n := 1 + r.Intn(40)
	for i := 0; i < n; i++ {
		b.WriteString(fragments[r.Intn(len(fragments))])
	}
	return b.String()
}

// TestRandomDocumentsMatchYAMLv3 holds the reader to yaml/v3 on documents
// built at random from YAML's syntax, as FuzzParse does, but quick enough
// to run every time and reproducible (a fixed seed). For a longer search:
//
//	YAMLNODE_RANDOM=1000000 YAMLNODE_SEED=2 go test -run RandomDocuments ./policy/yamlnode
func TestRandomDocumentsMatchYAMLv3(t *testing.T) {
	count := 20000
	if v, err := strconv.Atoi(os.Getenv("YAMLNODE_RANDOM")); err == nil {
		count = v
	}
	seed := int64(1)
	if v, err := strconv.ParseInt(os.Getenv("YAMLNODE_SEED"), 10, 64); err == nil {
		seed = v
	}
	r := rand.New(rand.NewSource(seed))
	read, refused := 0, 0
	for i := 0; i < count; i++ {
		doc := randomDocument(r)
		got, gerr := yamlnode.Parse([]byte(doc))
		want, werr := oracleNoPanic([]byte(doc))
		if gerr != nil {
			refused++
			checkError(t, []byte(doc), gerr)
			continue
		}
		if werr != nil {
			if !wider([]byte(doc)) {
				t.Fatalf("yamlnode reads %q, which yaml/v3 refuses (%v):\n%s", doc, werr, dump(got))
			}
			continue
		}
		read++
		if w, g := dump(want), dump(got); w != g {
			t.Fatalf("%q: trees differ\nyaml/v3:\n%s\nyamlnode:\n%s", doc, w, g)
		}
	}
	t.Logf("%d random documents: %d read alike, %d refused", count, read, refused)
}
