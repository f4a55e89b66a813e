package edge_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/internal/clocktest"
	"github.com/contentguard/contentguard/internal/yaegitest"
)

// The Traefik plugin runs the engine interpreted by Yaegi v0.16.1. This test
// loads policy, edge and every concern package the way Traefik's plugin
// loader does — sources under a GOPATH, interp.New with stdlib.Symbols — and
// runs the whole conformance suite through the interpreted engine, so that
// the engine can never drift into code that Yaegi cannot run or, worse, runs
// wrongly (jwt/v5's RegisteredClaims decode empty there).

const module = "github.com/contentguard/contentguard"

// yaegiDeps lists what the engine and the policy reader import, transitively: this module's
// packages (copied into the interpreter's GOPATH) and anything else outside
// the standard library, which must be only golang-jwt — Redis, Prometheus
// and OpenTelemetry stay out of what the Traefik plugin interprets.
func yaegiDeps() (own []string, err error) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", module+"/edge", module+"/policy/yamlnode").Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps: %w", err)
	}
	for _, p := range strings.Fields(string(out)) {
		switch {
		case p == module:
			own = append(own, ".")
		case strings.HasPrefix(p, module+"/"):
			own = append(own, strings.TrimPrefix(p, module+"/"))
		case p == "github.com/golang-jwt/jwt/v5":
		default:
			return nil, fmt.Errorf("the engine imports %s: only the standard library and golang-jwt run under Yaegi", p)
		}
	}
	return own, nil
}

// interpMu serialises calls into the interpreter. Yaegi v0.16.1 resolves
// types lazily on first use without locking, which the race detector flags
// when parallel cases enter a code path for the first time together. Cases
// still run in parallel; only their interpreted calls take turns.
var interpMu sync.Mutex

type shimFuncs struct {
	start func(string, string, string, func() time.Time) (int, string)
	do    func(int, string, string, string, string, int64, int, bool, int64) string
	close func(int)
}

var (
	shimOnce sync.Once
	shim     shimFuncs
	shimErr  error
)

func loadShim(t testing.TB) shimFuncs {
	t.Helper()
	shimOnce.Do(func() { shim, shimErr = buildShim(t) })
	if shimErr != nil {
		t.Fatalf("yaegi: %v", shimErr)
	}
	return shim
}

func buildShim(t testing.TB) (shimFuncs, error) {
	gopath, err := os.MkdirTemp("", "cg-yaegi-")
	if err != nil {
		return shimFuncs{}, err
	}
	// Yaegi reads every source while importing, below; the copies are not
	// needed afterwards.
	defer os.RemoveAll(gopath)
	root, err := filepath.Abs("..")
	if err != nil {
		return shimFuncs{}, err
	}
	pkgs, err := yaegiDeps()
	if err != nil {
		return shimFuncs{}, err
	}
	sources := make([]yaegitest.Source, 0, len(pkgs)+2)
	for _, pkg := range pkgs {
		sources = append(sources, yaegitest.Package(path.Join(module, pkg), filepath.Join(root, pkg)))
	}
	sources = append(sources,
		yaegitest.Package(module+"/yaegishim", filepath.Join(root, "edge", "testdata", "yaegishim")),
		yaegitest.Module("github.com/golang-jwt/jwt/v5"))
	i, err := yaegitest.Load(gopath, sources...)
	if err != nil {
		return shimFuncs{}, err
	}
	if _, err := i.Eval(`import "` + module + `/yaegishim"`); err != nil {
		return shimFuncs{}, err
	}
	var s shimFuncs
	v, err := i.Eval("yaegishim.Start")
	if err != nil {
		return s, err
	}
	s.start = v.Interface().(func(string, string, string, func() time.Time) (int, string))
	if v, err = i.Eval("yaegishim.Do"); err != nil {
		return s, err
	}
	s.do = v.Interface().(func(int, string, string, string, string, int64, int, bool, int64) string)
	if v, err = i.Eval("yaegishim.Close"); err != nil {
		return s, err
	}
	s.close = v.Interface().(func(int))
	return s, nil
}

// yaegiPlane runs the cases through one interpreter, whose calls take turns
// (interpMu). Each instance has a clock of its own that the cases' sleeps
// move (conformance.Clocked): refills, Retry-After and breaker timers are
// exact however long a case waits for its turn.
type yaegiPlane struct{}

// yaegiInstance is conformance.Clocked: the interpreted engine reads the
// instance's clock (a compiled func passed into the interpreter).
type yaegiInstance struct {
	s     shimFuncs
	id    int
	clock *clocktest.Clock
}

func (yaegiPlane) Start(t testing.TB, policyPath string) conformance.Instance {
	s := loadShim(t)
	data, err := os.ReadFile(policyPath)
	if err != nil {
		t.Fatal(err)
	}
	clock := clocktest.New(time.Now())
	interpMu.Lock()
	id, msg := s.start(policyPath, string(data), filepath.Dir(policyPath), clock.Now)
	interpMu.Unlock()
	if msg != "" {
		t.Fatalf("interpreted engine: %s", msg)
	}
	return &yaegiInstance{s: s, id: id, clock: clock}
}

// Sleeps in a case move the instance's clock.
var _ conformance.Clocked = (*yaegiInstance)(nil)

func (in *yaegiInstance) Now() time.Time { return in.clock.Now() }

func (in *yaegiInstance) Advance(d time.Duration) { in.clock.Advance(d) }

func (in *yaegiInstance) Close() {
	interpMu.Lock()
	defer interpMu.Unlock()
	in.s.close(in.id)
}

func (in *yaegiInstance) Do(t testing.TB, req conformance.SentRequest, up conformance.Upstream) conformance.Response {
	hj, _ := json.Marshal(req.Header)
	interpMu.Lock()
	out := in.s.do(in.id, req.Method, req.Path, string(hj), req.Peer, int64(req.BodyBytes), up.Status, up.Down, up.Delay.Milliseconds())
	interpMu.Unlock()
	var res struct {
		Status         int         `json:"status"`
		Header         http.Header `json:"header"`
		Body           string      `json:"body"`
		Forwarded      bool        `json:"forwarded"`
		UpstreamHeader http.Header `json:"upstreamHeader"`
		UpstreamPath   string      `json:"upstreamPath"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("interpreted engine answered %q: %v", out, err)
	}
	return conformance.Response{
		Status: res.Status, Header: res.Header, Body: []byte(res.Body), Forwarded: res.Forwarded,
		UpstreamHeader: res.UpstreamHeader, UpstreamPath: res.UpstreamPath,
	}
}

// TestConformanceUnderYaegi runs every conformance case through the engine
// as Traefik's Yaegi runs it: expired tokens refused, scopes enforced, paths
// normalised — outcomes, not just that the code loads.
func TestConformanceUnderYaegi(t *testing.T) {
	if testing.Short() {
		t.Log("-short: running the interpreted suite anyway; it is the proof the Traefik plugin depends on")
	}
	conformance.Run(t, yaegiPlane{}, conformance.Options{})
}

// BenchmarkCheckUnderYaegi: one cached-JWT decision made by the interpreted
// engine, as the Traefik plugin makes it (plus the shim's JSON round trip).
func BenchmarkCheckUnderYaegi(b *testing.B) {
	s := loadShim(b)
	inst := yaegiPlane{}.Start(b, filepath.Join("testdata", "bench.yaml")).(*yaegiInstance)
	defer inst.Close()
	h, _ := json.Marshal(http.Header{"Authorization": {"Bearer " + benchToken(b, "read write")}})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out := s.do(inst.id, "GET", "/api/v1/jobs/42", string(h), "198.51.100.7", -1, 200, false, 0)
		if !strings.Contains(out, `"forwarded":true`) {
			b.Fatalf("not forwarded: %s", out)
		}
	}
}
