package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/contentguard/contentguard/conformance"
)

// An example in README.md or docs/*.md is a fenced block. Every sh and
// yaml block carries a marker on the line before its fence:
//
//	<!-- tested -->                 a command block: run, in order with the
//	                                page's other tested blocks, against `up`
//	<!-- tested: expect TEXT -->    the same, and its output must hold TEXT
//	<!-- tested: file NAME -->      a file the commands after it use: written
//	                                to NAME in the page's working directory
//	<!-- not run: REASON -->        and why (a long-running server, a
//	                                benchmark, a fragment); REASON names the
//	                                test that covers it where one does
//
// so that no example can be added, or rot, without a test noticing.
type docBlock struct {
	file   string // README.md, docs/x.md
	line   int    // of the fence
	lang   string
	marker string // tested, tested: file NAME, not run: ...
	body   string
}

var markerRE = regexp.MustCompile(`^<!--\s*(tested(?::\s*(?:file\s+\S+|expect\s+\S.*?))?|not run:\s*\S.*?)\s*-->$`)

// docBlocks reads the fenced blocks of a Markdown file with their markers.
func docBlocks(t *testing.T, path, name string) []docBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []docBlock
	var cur *docBlock
	prev := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &docBlock{file: name, line: n, lang: strings.TrimSpace(strings.TrimPrefix(line, "```"))}
			if m := markerRE.FindStringSubmatch(strings.TrimSpace(prev)); m != nil {
				cur.marker = m[1]
			}
		case cur != nil && strings.HasPrefix(line, "```"):
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.body += line + "\n"
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// docPages are README.md and docs/*.md, by the names the tests report.
func docPages(t *testing.T) map[string]string {
	t.Helper()
	pages := map[string]string{"README.md": filepath.Join("..", "..", "README.md")}
	matches, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil || len(matches) == 0 {
		t.Fatalf("docs/*.md: %v", err)
	}
	for _, m := range matches {
		pages["docs/"+filepath.Base(m)] = m
	}
	return pages
}

// TestDocsExamplesAreMarked: every sh and yaml block of README.md and
// docs/*.md says whether a test runs it (and if not, why).
func TestDocsExamplesAreMarked(t *testing.T) {
	tested := 0
	for name, path := range docPages(t) {
		for _, b := range docBlocks(t, path, name) {
			switch b.lang {
			case "sh", "bash", "shell", "console", "yaml", "yml":
			default:
				continue
			}
			switch {
			case b.marker == "":
				t.Errorf("%s:%d: a %s block without <!-- tested --> or <!-- not run: why -->", b.file, b.line, b.lang)
			case (b.marker == "tested" || strings.HasPrefix(b.marker, "tested: expect")) && b.lang != "sh" && b.lang != "bash":
				t.Errorf("%s:%d: only sh blocks run; mark a %s block <!-- tested: file NAME -->", b.file, b.line, b.lang)
			case strings.HasPrefix(b.marker, "tested"):
				tested++
			}
		}
	}
	if tested < 10 {
		t.Errorf("only %d tested examples in the docs", tested)
	}
}

// docAddresses are the addresses the docs use for up's listeners (its
// defaults), replaced by those of the up under test.
func docAddresses(u *upRun) *strings.Replacer {
	edge := strings.TrimPrefix(u.edge, "http://")
	backend := strings.TrimPrefix(u.backend, "http://")
	admin := strings.TrimPrefix(u.admin, "http://")
	return strings.NewReplacer(
		"go run ./cmd/contentguard", "contentguard",
		"127.0.0.1:8080", edge, "localhost:8080", edge,
		"127.0.0.1:8081", backend, "localhost:8081", backend,
		"127.0.0.1:9901", admin, "localhost:9901", admin,
	)
}

// TestDocsExamples runs each page's tested examples, in page order, as one
// bash script (set -euo pipefail; curl fails on HTTP errors) in a fresh
// directory, against `up` on free ports and with the built contentguard
// first on PATH. `go run ./cmd/contentguard` runs that binary, and up's
// default addresses are replaced by the real ones.
func TestDocsExamples(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	bin := buildBinary(t)
	u := startUp(t, filepath.Join(t.TempDir(), "state"))
	addrs := docAddresses(u)
	env := []string{"PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH")}
	for name, path := range docPages(t) {
		var script strings.Builder
		n := 0
		for _, b := range docBlocks(t, path, name) {
			switch {
			case b.marker == "tested" || strings.HasPrefix(b.marker, "tested: expect "):
				// The block runs in this shell (its variables live on);
				// its output is kept to check and shown.
				out := fmt.Sprintf(".cg-doc-%d.out", b.line)
				fmt.Fprintf(&script, "echo '== %s:%d' >&2\n{\n%s\n} >%s 2>&1 || { cat %s; exit 1; }\ncat %s\n",
					b.file, b.line, addrs.Replace(b.body), out, out, out)
				if want, ok := strings.CutPrefix(b.marker, "tested: expect "); ok {
					fmt.Fprintf(&script, "grep -qF -- %q %s || { echo '%s:%d: the output lacks %s' >&2; exit 1; }\n",
						want, out, b.file, b.line, strings.ReplaceAll(want, "'", ""))
				}
				n++
			case strings.HasPrefix(b.marker, "tested: file "):
				file := strings.TrimSpace(strings.TrimPrefix(b.marker, "tested: file "))
				fmt.Fprintf(&script, "cat > %q <<'CG_DOC_EOF'\n%sCG_DOC_EOF\n", file, addrs.Replace(b.body))
				n++
			}
		}
		if n == 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			out, err := sh(t, t.TempDir(), env, script.String())
			if err != nil {
				t.Fatalf("the examples of %s: %v", name, err)
			}
			t.Logf("%s", out)
		})
	}
}

// publicReferences are the sites docs may link to outside the repository:
// standards, the Go documentation, and the published documentation and
// sources of the gateways contentguard plugs into (Kong, Traefik, Envoy).
var publicReferences = []string{
	"https://www.rfc-editor.org/", "https://datatracker.ietf.org/", "https://pkg.go.dev/", "https://go.dev/",
	"https://docs.konghq.com/", "https://developer.konghq.com/", "https://github.com/Kong/",
	"https://doc.traefik.io/", "https://github.com/traefik/",
	"https://www.envoyproxy.io/docs/", "https://github.com/envoyproxy/", "https://github.com/grpc/",
}

// TestDocsLinksStayInRepository: every link of README.md and docs/*.md is
// a file of the repository (that exists; a #fragment of a page, a heading
// of it) or a public reference, and no
// page points at a path outside the repository (the policy reference once
// named ../shared/design/policy-v1.md, which a clone does not have).
func TestDocsLinksStayInRepository(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	outside := regexp.MustCompile("`(\\.\\./[^`]*)`")
	for name, path := range docPages(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Dir(path)
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if file, frag, ok := strings.Cut(target, "#"); ok && !strings.HasPrefix(target, "http") {
				md := path
				if file != "" {
					md = filepath.Join(dir, file)
				}
				if strings.HasSuffix(md, ".md") {
					if anchors, err := mdAnchors(md); err == nil && !anchors[frag] {
						t.Errorf("%s links to %s, a heading %s does not have", name, target, filepath.Base(md))
					}
				}
			}
			switch {
			case strings.HasPrefix(target, "#"):
			case strings.HasPrefix(target, "http://"), strings.HasPrefix(target, "https://"):
				public := false
				for _, p := range publicReferences {
					public = public || strings.HasPrefix(target, p)
				}
				if !public {
					t.Errorf("%s links outside the repository: %s", name, target)
				}
			default:
				file, _, _ := strings.Cut(target, "#")
				abs, err := filepath.Abs(filepath.Join(dir, file))
				if err != nil || !strings.HasPrefix(abs, root+string(filepath.Separator)) {
					t.Errorf("%s links to %s, outside the repository", name, target)
				} else if _, err := os.Stat(abs); err != nil {
					t.Errorf("%s links to %s, which does not exist", name, target)
				}
			}
		}
		for _, m := range outside.FindAllStringSubmatch(string(b), -1) {
			abs, _ := filepath.Abs(filepath.Join(dir, m[1]))
			if _, err := os.Stat(abs); err != nil || !strings.HasPrefix(abs, root+string(filepath.Separator)) {
				t.Errorf("%s names %s, which is not in the repository", name, m[1])
			}
		}
	}
}

// mdAnchors are the fragments a Markdown page's headings get on GitHub:
// the heading's text without its markup, lower-cased, punctuation dropped,
// spaces made '-', a repeat numbered (-1, -2, ...); and explicit <a id>s.
func mdAnchors(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	markup := regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	explicit := regexp.MustCompile(`<a (?:id|name)="([^"]+)"`)
	anchors, seen := map[string]bool{}, map[string]int{}
	fenced := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		for _, m := range explicit.FindAllStringSubmatch(line, -1) {
			anchors[m[1]] = true
		}
		text, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if fenced || !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		text = strings.ToLower(strings.TrimSpace(markup.ReplaceAllString(text, "$1")))
		slug := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				return r
			}
			return -1
		}, text)
		if n := seen[slug]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors, nil
}

// TestDocsNameCodeThatExists: where a page points into the code as
// `dir/file.go` (`Name`, `Type.Method`), the file exists and declares or
// uses each name, so a rename or a move cannot leave a page pointing at
// nothing (security.md named edge/wire.go's scanHeaders and
// sidecar/metrics.go's KeysFetched after both had moved).
func TestDocsNameCodeThatExists(t *testing.T) {
	root := filepath.Join("..", "..")
	ref := regexp.MustCompile("`([a-z][a-z0-9_]*/[a-z0-9_/]*\\.go)`(?: \\(([^)]*)\\))?")
	name := regexp.MustCompile("`([A-Za-z_][A-Za-z0-9_.]*)`")
	checked := 0
	for page, path := range docPages(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			src, err := os.ReadFile(filepath.Join(root, m[1]))
			if err != nil {
				t.Errorf("%s names %s, which is not in the repository", page, m[1])
				continue
			}
			for _, n := range name.FindAllStringSubmatch(m[2], -1) {
				ident := n[1][strings.LastIndex(n[1], ".")+1:]
				if !regexp.MustCompile(`\b` + regexp.QuoteMeta(ident) + `\b`).Match(src) {
					t.Errorf("%s names %s in %s, which has no %s", page, n[1], m[1], ident)
				}
				checked++
			}
		}
	}
	if checked == 0 {
		t.Error("no code reference found: the pattern no longer fits the docs")
	}
}

// TestGuidesForwardWhatTheBackendServes: the request each gateway guide
// (Kong, Traefik, Envoy) shows forwarded, with the policy's API key, is one
// the real backend answers as shown. The guides' own tests run them through
// their plane in front of a scripted upstream that answers 200 to anything;
// the guides showed GET /api/v1/jobs as 200 while the backend answers 405
// (jobs are submitted with POST and read by id).
func TestGuidesForwardWhatTheBackendServes(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	u := startUp(t, filepath.Join(t.TempDir(), "state"))
	for page, host := range map[string]string{"kong.md": "localhost:8000", "traefik.md": "localhost:8000", "envoy.md": "localhost:10000"} {
		doc, err := os.ReadFile(filepath.Join("..", "..", "docs", page))
		if err != nil {
			t.Fatal(err)
		}
		examples, err := conformance.CurlExamples(doc, host)
		if err != nil {
			t.Fatalf("docs/%s: %v", page, err)
		}
		forwarded := 0
		for _, ex := range examples {
			if ex.Status >= 300 {
				continue // refused at the edge: the backend never sees it
			}
			forwarded++
			req, _ := http.NewRequest(http.MethodGet, u.backend+ex.Path, nil)
			if status, _, body := do(t, req); status != ex.Status {
				t.Errorf("docs/%s:%d: the backend answers GET %s with %d, the guide shows %d: %s", page, ex.Line, ex.Path, status, ex.Status, body)
			}
		}
		if forwarded == 0 {
			t.Errorf("docs/%s shows no forwarded request", page)
		}
	}
}
