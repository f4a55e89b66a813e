package yamlnode_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/yamlnode"
)

var errPanicked = errors.New("yaml/v3 panicked")

// FuzzParse holds the reader to yaml/v3 on arbitrary input: when both read
// a document, the trees are identical; when the reader refuses, it says
// where and why; and it reads nothing that yaml/v3 refuses, except the
// deliberate differences of wider (see wider).
func FuzzParse(f *testing.F) {
	for _, d := range repositoryDocuments(f) {
		f.Add(d.data)
	}
	for _, c := range features {
		f.Add([]byte(c.doc))
	}
	for _, c := range refusals {
		f.Add([]byte(c.doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := yamlnode.Parse(data)
		want, werr := oracleNoPanic(data)
		if gerr != nil {
			checkError(t, data, gerr)
			return
		}
		if werr != nil {
			if !wider(data) {
				t.Fatalf("yamlnode reads what yaml/v3 refuses (%v):\n%s", werr, dump(got))
			}
			return
		}
		if w, g := dump(want), dump(got); w != g {
			t.Fatalf("trees differ\nyaml/v3:\n%s\nyamlnode:\n%s", w, g)
		}
	})
}

// oracleNoPanic is oracle, with a panic of yaml/v3 counted as a refusal.
func oracleNoPanic(data []byte) (n *policy.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = nil, errPanicked
		}
	}()
	return oracle(data)
}

// wider reports the documents that yamlnode reads on purpose although
// yaml/v3 refuses them.
func wider(data []byte) bool {
	// "\/" is an escape in YAML 1.2 (and JSON); yaml/v3 does not know it.
	return bytes.Contains(data, []byte(`\/`))
}

// checkError requires a refusal to be an *Error positioned inside the
// document, with a message.
func checkError(t *testing.T, data []byte, err error) {
	t.Helper()
	e, ok := err.(*yamlnode.Error)
	if !ok {
		t.Fatalf("error is %T, not *yamlnode.Error: %v", err, err)
	}
	lines := 1 + bytes.Count(data, []byte("\n"))
	if cr := 1 + bytes.Count(data, []byte("\r")); cr > lines {
		lines = cr
	}
	if e.Line < 1 || e.Line > lines+1 || e.Column < 1 {
		t.Fatalf("error outside the %d-line document: %v", lines, e)
	}
	if len(e.Message) < 10 || strings.Contains(e.Message, "internal") {
		t.Fatalf("unclear error: %v", e)
	}
}
