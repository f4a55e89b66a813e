package yamlnode_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/policy/yamlnode"
)

// A document is YAML found in the repository, named by where it was found.
type document struct {
	where string
	data  []byte
}

// repositoryDocuments gathers every YAML document of the repository: the
// .yaml and .yml files (policies, conformance cases, deploy examples,
// testdata), the ```yaml blocks of the docs, and the Go string literals
// that hold a policy (the policy tests' documents and patches).
func repositoryDocuments(t testing.TB) []document {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	var docs []document
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		switch {
		case strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml"):
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			docs = append(docs, document{rel, data})
		case strings.HasSuffix(name, ".md"):
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			docs = append(docs, markdownYAML(rel, string(data))...)
		case strings.HasSuffix(name, ".go") && !strings.HasPrefix(rel, filepath.Join("policy", "yamlnode")):
			found, err := goPolicyLiterals(rel, path)
			if err != nil {
				return err
			}
			docs = append(docs, found...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// markdownYAML returns the fenced ```yaml blocks of a Markdown file.
func markdownYAML(where, text string) []document {
	var docs []document
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimSpace(lines[i])
		if fence != "```yaml" && fence != "```yml" {
			continue
		}
		start := i + 1
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
		}
		body := strings.Join(lines[start:i], "\n") + "\n"
		docs = append(docs, document{where + ":" + strconv.Itoa(start), []byte(body)})
	}
	return docs
}

// goPolicyLiterals returns the string literals of a Go file that hold a
// policy or a piece of one (they mention apiVersion, kind: EdgePolicy or
// spec:).
func goPolicyLiterals(where, path string) ([]document, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(src), "EdgePolicy") && !strings.Contains(string(src), "spec:") {
		return nil, nil
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		return nil, err
	}
	var docs []document
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil || !strings.Contains(s, "\n") {
			return true
		}
		if strings.Contains(s, "kind: EdgePolicy") || strings.Contains(s, "apiVersion:") || strings.Contains(s, "spec:") {
			docs = append(docs, document{where + ":" + strconv.Itoa(fset.Position(lit.Pos()).Line), []byte(fillVerbs(s))})
		}
		return true
	})
	return docs, nil
}

// fillVerbs turns a fmt template into a document: %s and %v become x, %d
// becomes 1 and %q becomes "x".
func fillVerbs(s string) string {
	return verb.ReplaceAllStringFunc(s, func(v string) string {
		switch v[len(v)-1] {
		case 'd':
			return "1"
		case 'q':
			return `"x"`
		case '%':
			return "%"
		}
		return "x"
	})
}

var verb = regexp.MustCompile(`%[-+# 0-9.\[\]]*[sdqv%]`)

// TestRepositoryDocuments: every YAML document in the repository reads to
// the same tree — kinds, tags, values, lines and columns — as yaml/v3
// gives, or both readers refuse it.
func TestRepositoryDocuments(t *testing.T) {
	docs := repositoryDocuments(t)
	policies, equal := 0, 0
	for _, d := range docs {
		want, werr := oracle(d.data)
		got, gerr := yamlnode.Parse(d.data)
		if strings.Contains(string(d.data), "kind: EdgePolicy") {
			policies++
		}
		switch {
		case werr == nil && gerr == nil:
			if w, g := dump(want), dump(got); w != g {
				t.Errorf("%s: trees differ\nyaml/v3:\n%s\nyamlnode:\n%s", d.where, w, g)
				continue
			}
			equal++
		case werr == nil:
			t.Errorf("%s: yaml/v3 reads it, yamlnode refuses: %v", d.where, gerr)
		case gerr == nil:
			t.Errorf("%s: yamlnode reads what yaml/v3 refuses (%v)", d.where, werr)
		}
	}
	t.Logf("%d YAML documents (%d whole policies): %d identical trees, %d refused by both", len(docs), policies, equal, len(docs)-equal)
	// The walk must find what is there, or this test proves nothing.
	if policies < 20 || equal < 40 {
		t.Fatalf("found only %d policies and %d documents read by both", policies, equal)
	}
}
