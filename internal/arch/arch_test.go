package arch

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/contentguard/contentguard"

// pkg is what go list says of one package (its non-test files).
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
	Standard   bool
}

// list runs go list -json over patterns (with -deps when deps).
func list(t *testing.T, deps bool, patterns ...string) []pkg {
	t.Helper()
	args := []string{"list", "-json"}
	if deps {
		args = append(args, "-deps")
	}
	cmd := exec.Command("go", append(args, patterns...)...)
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// rel is an import path of the module relative to it ("edge/auth"), or ""
// for any other.
func rel(path string) string {
	if rest, ok := strings.CutPrefix(path, module+"/"); ok {
		return rest
	}
	return ""
}

// under reports whether rel path p is dir or inside it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// yaegiRoots are the packages the Traefik plugin runs under Yaegi v0.16.1:
// what it vendors from this module (plugins/traefik/vendor/modules.txt,
// which `make vendor` writes and TestVendorInSync keeps current) — the
// engine and what it imports, and the policy decoder with its YAML reader.
func yaegiRoots(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "plugins", "traefik", "vendor", "modules.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var roots []string
	for _, line := range strings.Split(string(b), "\n") {
		if rel := rel(line); rel != "" && !strings.HasPrefix(line, "#") {
			roots = append(roots, "./"+rel)
		}
	}
	for _, must := range []string{"./edge", "./policy", "./policy/yamlnode"} {
		if !slices.Contains(roots, must) {
			t.Fatalf("plugins/traefik/vendor/modules.txt lacks %s: is the plugin still vendored?", must)
		}
	}
	return roots
}

// TestYaegiRunPackagesStayInterpretable: what the Traefik plugin
// interprets imports only the standard library, the module's own packages
// and golang-jwt (never Prometheus, OpenTelemetry, Redis, gRPC or
// protobuf, which Yaegi cannot load), and its sources use nothing Yaegi
// v0.16.1 runs badly: no generics, no reflect, unsafe or embed.
func TestYaegiRunPackagesStayInterpretable(t *testing.T) {
	forbidden := []string{"github.com/prometheus/", "go.opentelemetry.io/", "github.com/redis/", "google.golang.org/grpc",
		"google.golang.org/protobuf", "github.com/envoyproxy/", "go.yaml.in/yaml"}
	checked, reported := 0, map[string]bool{}
	for _, p := range list(t, true, yaegiRoots(t)...) {
		if p.Standard {
			continue
		}
		if rel(p.ImportPath) == "" {
			if p.ImportPath == "github.com/golang-jwt/jwt/v5" {
				continue
			}
			root := strings.Join(strings.SplitN(p.ImportPath, "/", 4)[:3], "/")
			why := "only the standard library, the module and golang-jwt run under Yaegi"
			for _, f := range forbidden {
				if strings.HasPrefix(p.ImportPath, f) {
					why = "which Yaegi cannot load"
				}
			}
			if !reported[root] {
				reported[root] = true
				t.Errorf("the Yaegi-run packages reach %s (%s): %s", root, p.ImportPath, why)
			}
			continue
		}
		checked++
		for _, imp := range p.Imports {
			if imp == "reflect" || imp == "unsafe" || imp == "embed" {
				t.Errorf("%s imports %s, which Yaegi v0.16.1 runs badly", p.ImportPath, imp)
			}
		}
		eachFile(t, p, func(name string, f *ast.File) {
			ast.Inspect(f, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.FuncType:
					if x.TypeParams != nil && len(x.TypeParams.List) > 0 {
						t.Errorf("%s: a generic function: Yaegi v0.16.1 runs generics badly", name)
					}
				case *ast.TypeSpec:
					if x.TypeParams != nil && len(x.TypeParams.List) > 0 {
						t.Errorf("%s: generic type %s: Yaegi v0.16.1 runs generics badly", name, x.Name.Name)
					}
				}
				return true
			})
		})
	}
	if checked < 10 {
		t.Fatalf("only %d packages of the module checked: the roots moved?", checked)
	}
}

// rule: packages under from (but not under except) may import nothing
// under deny ("": anything but the standard library) unless it is under
// allow or under from itself.
type rule struct {
	from   string
	except []string
	deny   []string
	allow  []string
	why    string
}

var rules = []rule{
	{"policy", nil, []string{"edge", "telemetry", "sidecar", "backend", "plugins", "cmd", "conformance"}, nil,
		"the policy is the bottom layer: every plane reads it"},
	{"internal/requestid", nil, []string{""}, []string{"internal/httpsyntax"}, "a leaf that edge and telemetry both use"},
	{"internal/httpsyntax", nil, []string{""}, nil, "a leaf"},
	{"internal/keyfile", nil, []string{""}, nil, "a leaf every key reader uses"},
	{"edge", nil, []string{"sidecar", "telemetry", "backend", "plugins", "cmd", "conformance", "policy/policyfile", "policy/yamlnode", "policy/lint"}, nil,
		"the engine: every plane embeds it, it embeds no plane"},
	{"telemetry", []string{"telemetry/edgemetrics"}, []string{"edge"}, nil,
		"observability for every binary, not only the edge's"},
	{"telemetry", nil, []string{"sidecar", "backend", "plugins", "cmd"}, nil,
		"observability is used by the binaries, not the other way round"},
	{"backend", nil, []string{"edge", "sidecar", "plugins", "cmd", "policy"}, []string{"edge/problem"},
		"the backend does only the analysis; it shares the problem+json format"},
	{"sidecar", nil, []string{"backend", "plugins", "cmd"}, nil, "a data plane"},
	{"plugins", nil, []string{"sidecar", "backend", "cmd"}, nil, "a data plane"},
	{"sidecar/upstream", nil, []string{"sidecar"}, []string{"sidecar/internal/h1"}, "the upstream client knows no server"},
	{"sidecar/exchange", nil, []string{"sidecar"}, []string{"sidecar/upstream", "sidecar/internal"}, "what both servers share knows neither"},
	{"sidecar/fastpath", nil, []string{"sidecar"}, []string{"sidecar/upstream", "sidecar/exchange", "sidecar/internal"},
		"the fast server sees the Server only through fastpath.Sidecar"},
	{"sidecar/nethttp", nil, []string{"sidecar"}, []string{"sidecar/upstream", "sidecar/exchange", "sidecar/internal"},
		"the net/http handler sees the Server only through nethttp.Sidecar"},
	{"sidecar/admin", nil, []string{"sidecar"}, []string{"sidecar/exchange"}, "the admin API reads the Server through admin.Sidecar"},
	{"sidecar/extauthz", nil, []string{"sidecar"}, nil,
		"Envoy's check sees the Server only through Options.Engine (Server.Engine)"},
	{"sidecar/xdsclient", nil, []string{"sidecar"}, nil,
		"the xDS client hands policies to the Server only through Options.Apply (Server.Apply)"},
	{"xds", nil, []string{"sidecar", "plugins", "backend", "cmd", "telemetry", "conformance"}, []string{"edge/secheaders"},
		"the control plane translates policies for the planes; it embeds none of them"},
	{"edge", nil, []string{"xds"}, nil, "the engine knows no control plane"},
	{"plugins", nil, []string{"xds"}, nil, "a data plane"},
	{"sidecar", nil, []string{"xds"}, []string{"xds/policypb"},
		"the sidecar hears the control plane over the wire: of xds it knows only the resource type"},
}

// TestImportRules: no package imports across the rules of the house
// (docs/architecture.md, "Rules of the house").
func TestImportRules(t *testing.T) {
	matched := make([]int, len(rules))
	for _, p := range list(t, false, "./...") {
		from := rel(p.ImportPath)
		for i, r := range rules {
			if !under(from, r.from) || underAny(from, r.except) {
				continue
			}
			matched[i]++
			for _, imp := range p.Imports {
				if broken(imp, r) {
					t.Errorf("%s imports %s: %s may not (%s)", from, imp, r.from, r.why)
				}
			}
		}
	}
	for i, r := range rules {
		if matched[i] == 0 {
			t.Errorf("the rule for %s matches no package: moved?", r.from)
		}
	}
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if under(p, d) {
			return true
		}
	}
	return false
}

// broken reports whether a package under r.from may not import imp.
func broken(imp string, r rule) bool {
	to := rel(imp)
	if to == "" && !strings.Contains(strings.Split(imp, "/")[0], ".") {
		return false // the standard library
	}
	if to != "" && (under(to, r.from) || underAny(to, r.allow)) {
		return false
	}
	for _, d := range r.deny {
		if d == "" || to != "" && under(to, d) {
			return true
		}
	}
	return false
}

// TestNoSidecarPackageServesAndDials: the packages of the sidecar that
// serve (the Server, the fast server, the net/http handler, the admin API,
// the token endpoint, the NGINX endpoint and Envoy's ext_authz) open no
// connections of their own; the clients open them and serve none: the
// upstream's (sidecar/upstream) and the control plane's (sidecar/xdsclient).
func TestNoSidecarPackageServesAndDials(t *testing.T) {
	// What opens or accepts connections: calls, composite literals and
	// values of these names.
	dials := []string{"net.Dial", "net.DialTimeout", "net.Dialer", "tls.Dial", "tls.Client", "tls.DialWithDialer",
		"http.Transport", "http.DefaultTransport", "http.DefaultClient"}
	serves := []string{"http.Server", "http.ListenAndServe", "http.Serve", "net.Listen", "tls.Server", "tls.Listen", "grpc.NewServer"}
	servers := map[string]bool{"sidecar": true, "sidecar/fastpath": true, "sidecar/nethttp": true, "sidecar/admin": true,
		"sidecar/issuer": true, "sidecar/authz": true, "sidecar/extauthz": true}
	// Clients serve nothing: the upstream's, and the control plane's.
	clients := map[string]bool{"sidecar/upstream": true, "sidecar/xdsclient": true}
	dials = append(dials, "grpc.NewClient", "grpc.Dial", "grpc.DialContext")
	seen := 0
	for _, p := range list(t, false, "./sidecar/...") {
		from := rel(p.ImportPath)
		var banned []string
		switch {
		case servers[from]:
			banned, seen = dials, seen+1
		case clients[from]:
			banned, seen = serves, seen+1
		default:
			continue
		}
		eachFile(t, p, func(file string, f *ast.File) {
			ast.Inspect(f, func(n ast.Node) bool {
				var used ast.Expr
				switch x := n.(type) {
				case *ast.CallExpr:
					used = x.Fun
				case *ast.CompositeLit:
					used = x.Type
				case *ast.SelectorExpr:
					used = x // a value such as http.DefaultTransport
				}
				if name := selector(used); name != "" && contains(banned, name) {
					if _, isType := n.(*ast.SelectorExpr); !isType || strings.HasPrefix(name, "http.Default") {
						t.Errorf("%s uses %s: a sidecar package either serves or dials the upstream", file, name)
					}
				}
				return true
			})
		})
	}
	if seen != len(servers)+len(clients) {
		t.Fatalf("checked %d of the %d sidecar packages the rule names: moved?", seen, len(servers)+len(clients))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// selector is "pkg.Name" for a selector expression on a package name.
func selector(e ast.Expr) string {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	id, ok := sel.X.(*ast.Ident)
	if !ok {
		return ""
	}
	return id.Name + "." + sel.Sel.Name
}

// eachFile parses the non-test Go files of p.
func eachFile(t *testing.T, p pkg, f func(name string, file *ast.File)) {
	t.Helper()
	fset := token.NewFileSet()
	for _, name := range p.GoFiles {
		path := filepath.Join(p.Dir, name)
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		f(rel(p.ImportPath)+"/"+name, file)
	}
}

// TestArchitectureDocNamesTheRules: docs/architecture.md states every rule
// these tests check, and names each test.
func TestArchitectureDocNamesTheRules(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if !strings.Contains(string(doc), "`"+r.from+"`") {
			t.Errorf("docs/architecture.md does not state the rule of %s", r.from)
		}
	}
	for _, name := range []string{"TestImportRules", "TestNoSidecarPackageServesAndDials", "TestYaegiRunPackagesStayInterpretable", "TestDecoderIsCurrent"} {
		if !strings.Contains(string(doc), name) {
			t.Errorf("docs/architecture.md does not name %s", name)
		}
	}
}
