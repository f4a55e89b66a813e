package problem_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// repoRoot is the module root, two levels up from this package.
const repoRoot = "../.."

// usedSlugs finds the problem types the code answers with, in the forms it
// makes them: problem.New / TypeURI / writeProblem with a literal slug, the
// engine's reason codes (a problem's type is its reason with - for _), the
// backend's status table, and literal URIs (NGINX's server.conf).
func usedSlugs(t *testing.T) map[string][]string {
	t.Helper()
	patterns := []*regexp.Regexp{
		regexp.MustCompile(`problem\.New\([^,]+,\s*"([a-z-]+)"`),
		regexp.MustCompile(`TypeURI\("([a-z-]+)"\)`),
		regexp.MustCompile(`writeProblem\(w,\s*[^,]+,\s*"([a-z-]+)"`),
		regexp.MustCompile(`contentguard\.dev/problems/([a-z-]+)`),
	}
	reasons := regexp.MustCompile(`\bReason\w*\s+(?:Reason\s+)?=\s+"([a-z_]+)"`)
	statusTable := regexp.MustCompile(`http\.Status\w+:\s+"([a-z-]+)"`)
	used := map[string][]string{}
	add := func(slug, where string) { used[slug] = append(used[slug], where) }
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, "_test.go") || !(strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".conf")) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		src := string(b)
		for _, re := range patterns {
			for _, m := range re.FindAllStringSubmatch(src, -1) {
				add(m[1], rel)
			}
		}
		switch filepath.ToSlash(rel) {
		case "edge/check.go", "edge/auth/verifier.go":
			for _, m := range reasons.FindAllStringSubmatch(src, -1) {
				if m[1] != "allowed" && m[1] != "cors_preflight" { // not rejections
					add(strings.ReplaceAll(m[1], "_", "-"), rel)
				}
			}
		case "backend/api/respond.go":
			for _, m := range statusTable.FindAllStringSubmatch(src, -1) {
				add(m[1], rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return used
}

// TestEveryProblemTypeIsDocumented: docs/problems.md lists exactly the
// problem types the code makes, and the code makes them in one scheme.
func TestEveryProblemTypeIsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "problems.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z-]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	used := usedSlugs(t)
	if len(used) < 20 {
		t.Fatalf("found only %d problem types in the code: the scan is broken", len(used))
	}
	var missing, stale []string
	for slug, where := range used {
		if !documented[slug] {
			missing = append(missing, slug+" ("+strings.Join(where, ", ")+")")
		}
	}
	for slug := range documented {
		if used[slug] == nil {
			stale = append(stale, slug)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("problem types used but not in docs/problems.md: %v", missing)
	}
	if len(stale) > 0 {
		t.Errorf("docs/problems.md lists types nothing makes: %v", stale)
	}
}

// TestOneProblemScheme: no code, config or page makes problem types of
// another scheme (the backend once had URNs of its own).
func TestOneProblemScheme(t *testing.T) {
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		ext := filepath.Ext(path)
		if ext != ".go" && ext != ".md" && ext != ".conf" && ext != ".yaml" && ext != ".json" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "urn:"+"contentguard") {
			t.Errorf("%s: a problem type of another scheme; use problem.TypeURI", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
