package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The truth the deploy files are checked against comes from the code:
// the subcommands and flags of the built binary (its own --help), and the
// environment variables its packages read (calls in their source). Nothing
// here is a list kept by hand.

// repoRoot is the repository's root: deploy/check/../..
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root, err := filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// inRepo is the absolute path of a repository path.
func inRepo(t testing.TB, rel string) string {
	return filepath.Join(repoRoot(t), filepath.FromSlash(rel))
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// TestMain removes the binary built for the tests: every run builds its own,
// and a machine running CI many times would otherwise keep them all.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds cmd/contentguard once per test process.
func binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "cg-deploy-check-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "contentguard")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/contentguard")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/contentguard: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// commands are the binary's subcommands, from its usage.
func commands(t testing.TB) map[string]bool {
	t.Helper()
	out, _ := exec.Command(binary(t), "--help").Output()
	cmds := map[string]bool{}
	in := false
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "Commands:"):
			in = true
		case in && strings.HasPrefix(line, "  "):
			cmds[strings.Fields(line)[0]] = true
		case in && strings.TrimSpace(line) == "":
			if len(cmds) > 0 {
				in = false
			}
		}
	}
	if len(cmds) < 3 {
		t.Fatalf("no commands in contentguard --help:\n%s", out)
	}
	return cmds
}

// flagInfo is one flag of a subcommand, as its --help prints it.
type flagInfo struct {
	Name    string
	Bool    bool
	Default string
}

var flagLine = regexp.MustCompile(`^  -([a-z0-9-]+)(?: ([a-z]+))?$`)
var defaultRE = regexp.MustCompile(`\(default (.*)\)$`)

// flags are the flags of `contentguard role`, from flag.PrintDefaults
// output of its --help, with their defaults.
func flags(t testing.TB, role string) map[string]flagInfo {
	t.Helper()
	cmd := exec.Command(binary(t), role, "--help")
	cmd.Env = cleanEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("contentguard %s --help: %v", role, err)
	}
	fs := map[string]flagInfo{}
	var cur *flagInfo
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := flagLine.FindStringSubmatch(line); m != nil {
			fs[m[1]] = flagInfo{Name: m[1], Bool: m[2] == ""}
			f := fs[m[1]]
			cur = &f
			continue
		}
		if cur != nil && strings.HasPrefix(line, "    \t") {
			if m := defaultRE.FindStringSubmatch(line); m != nil {
				d := m[1]
				if u, err := strconv.Unquote(d); err == nil {
					d = u
				}
				cur.Default = d
				fs[cur.Name] = *cur
			}
		}
	}
	if len(fs) == 0 {
		t.Fatalf("no flags in contentguard %s --help:\n%s", role, out)
	}
	return fs
}

// parseArgs splits a command line into its subcommand and flags the way
// package flag does (-x v, --x=v, -bool), failing on a flag the
// subcommand does not have.
func parseArgs(t testing.TB, where string, args []string) (role string, set map[string]string) {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("%s: no command", where)
	}
	role = args[0]
	if !commands(t)[role] {
		t.Fatalf("%s: contentguard has no command %q", where, role)
	}
	known := flags(t, role)
	set = map[string]string{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			t.Fatalf("%s: unexpected argument %q (contentguard %s takes flags only)", where, a, role)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f, ok := known[name]
		if !ok {
			t.Fatalf("%s: contentguard %s has no flag --%s", where, role, name)
		}
		if !hasValue {
			if f.Bool {
				value = "true"
			} else {
				i++
				if i == len(args) {
					t.Fatalf("%s: --%s needs a value", where, name)
				}
				value = args[i]
			}
		}
		set[name] = value
	}
	return role, set
}

// cleanEnv is this process's environment without the variables the
// binary reads, so that a test's processes see only what a file sets.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "PATH", k == "HOME", k == "TMPDIR", k == "LANG":
			env = append(env, kv)
		}
	}
	return env
}

var (
	envOnce sync.Once
	envRead map[string][]string
	envErr  error
)

// envReaders are the names of functions whose first argument (or every
// argument) names an environment variable: the standard library's, and
// the small helpers the binary's packages wrap them in.
var envReaders = map[string]bool{"Getenv": true, "LookupEnv": true, "envOr": true, "firstEnv": true, "getenv": true}

// envVars are the environment variables the binary reads: every string
// constant passed to such a call in the non-test files of the packages
// cmd/contentguard is built from, within this repository. The value lists
// where each is read.
func envVars(t testing.TB) map[string][]string {
	t.Helper()
	envOnce.Do(func() { envRead, envErr = scanEnvVars(repoRoot(t)) })
	if envErr != nil {
		t.Fatal(envErr)
	}
	return envRead
}

func scanEnvVars(root string) (map[string][]string, error) {
	cmd := exec.Command("go", "list", "-deps", "-json=Dir,ImportPath,GoFiles,Module", "./cmd/contentguard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	found := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			Dir, ImportPath string
			GoFiles         []string
			Module          *struct{ Path string }
		}
		if err := dec.Decode(&p); err != nil {
			return nil, err
		}
		if p.Module == nil || p.Module.Path != "github.com/contentguard/contentguard" {
			continue
		}
		fset := token.NewFileSet()
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				return nil, err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				fn := ""
				switch f := call.Fun.(type) {
				case *ast.Ident:
					fn = f.Name
				case *ast.SelectorExpr:
					fn = f.Sel.Name
				}
				if !envReaders[fn] {
					return true
				}
				for i, arg := range call.Args {
					lit, ok := arg.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					if v, err := strconv.Unquote(lit.Value); err == nil && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(v) {
						pos := fset.Position(lit.Pos())
						found[v] = append(found[v], fmt.Sprintf("%s/%s:%d", p.ImportPath, name, pos.Line))
					}
					if fn != "firstEnv" && i == 0 {
						break
					}
				}
				return true
			})
		}
	}
	return found, nil
}

// TestTruthIsDerived: the derived truth holds what the binary is known to
// read and serve, so that an empty scan cannot pass every check below.
func TestTruthIsDerived(t *testing.T) {
	env := envVars(t)
	var names []string
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, want := range []string{"REDIS_URL", "OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "PORT", "FUNCTIONS_CUSTOMHANDLER_PORT",
		"AWS_LAMBDA_FUNCTION_NAME", "METRICS_LISTEN", "LOG_LEVEL", "SERVICE_NAME", "CONTENTGUARD_POLICY", "_HANDLER"} {
		if _, ok := env[want]; !ok {
			t.Errorf("the scan of the binary's packages misses %s (found %v)", want, names)
		}
	}
	if f := flags(t, "sidecar"); f["admin"].Default != "127.0.0.1:9901" || f["listen"].Default != ":8080" || !f["no-access-log"].Bool {
		t.Errorf("sidecar flags from --help: %+v", f)
	}
	if f := flags(t, "backend"); f["metrics-listen"].Default != ":9091" || !f["worker"].Bool {
		t.Errorf("backend flags from --help: %+v", f)
	}
	for _, c := range []string{"backend", "sidecar", "healthcheck", "lambda-authorizer"} {
		if !commands(t)[c] {
			t.Errorf("commands lack %s", c)
		}
	}
}
