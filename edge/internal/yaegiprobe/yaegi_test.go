package yaegiprobe_test

import (
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/traefik/yaegi/interp"

	"github.com/contentguard/contentguard/edge/internal/yaegiprobe"
	"github.com/contentguard/contentguard/internal/yaegitest"
)

// edgePackages are the packages that the Traefik plugin runs under Yaegi,
// plus the probe program that calls them, by path in the module.
var edgePackages = []string{"internal/requestid", "edge/clientip", "edge/urlpath", "edge/cors", "edge/secheaders", "edge/problem", "internal/httpsyntax", "edge/internal/yaegiprobe"}

// native holds the compiled twins of the probes that are deterministic.
var native = map[string]interface{}{
	"Normalize": yaegiprobe.Normalize,
	"ClientIP":  yaegiprobe.ClientIP,
	"Origin":    yaegiprobe.Origin,
	"Preflight": yaegiprobe.Preflight,
	"Actual":    yaegiprobe.Actual,
	"Valid":     yaegiprobe.Valid,
	"Resolve":   yaegiprobe.Resolve,
	"Strict":    yaegiprobe.Strict,
	"Custom":    yaegiprobe.Custom,
	"Problem":   yaegiprobe.Problem,
}

func newInterpreter(t testing.TB) *interp.Interpreter {
	t.Helper()
	sources := make([]yaegitest.Source, 0, len(edgePackages))
	for _, pkg := range edgePackages {
		sources = append(sources, yaegitest.Package("github.com/contentguard/contentguard/"+pkg, filepath.Join("..", "..", "..", pkg)))
	}
	i := yaegitest.New(t, sources...)
	yaegitest.Eval(t, i, `import "github.com/contentguard/contentguard/edge/internal/yaegiprobe"`)
	return i
}

// prober calls an interpreted probe and, when there is a compiled twin,
// checks that both give the same answer.
type prober struct {
	t *testing.T
	i *interp.Interpreter
}

func (p prober) call(name string, args ...interface{}) string {
	p.t.Helper()
	v, err := p.i.Eval("yaegiprobe." + name)
	if err != nil {
		p.t.Fatalf("%s: %v", name, err)
	}
	in := make([]reflect.Value, len(args))
	for k, a := range args {
		in[k] = reflect.ValueOf(a)
	}
	// A quirk can make interpreted code loop for ever: fail, do not hang.
	result := make(chan string, 1)
	go func() { result <- v.Call(in)[0].String() }()
	var got string
	select {
	case got = <-result:
	case <-time.After(time.Minute):
		p.t.Fatalf("%s%q: no answer from the interpreter within a minute", name, args)
	}
	if f, ok := native[name]; ok {
		want := reflect.ValueOf(f).Call(in)[0].String()
		if got != want {
			p.t.Errorf("%s%q: interpreted %q, compiled %q", name, args, got, want)
		}
	}
	return got
}

func TestUnderYaegi(t *testing.T) {
	call := prober{t, newInterpreter(t)}.call

	for _, c := range []struct{ in, want string }{
		{"/api/v1/../admin/", "/api/admin/"},
		{"/x/../admin/", "/admin/"},
		{"//admin/", "/admin/"},
		{"/%2e%2e/admin", "/admin"},
		{"/api/v1%2F..%2Fadmin", "/api/admin"},
		{"/%252e%252e/admin", "/%252e%252e/admin"},
		{"/caf%c3%a9/a b", "/caf%C3%A9/a%20b"},
		{"/public/..;/admin/", "refused"},
		{"/a%zz", "refused"},
		{"/a%0d%0a", "refused"},
		{"/healthz", "/healthz"},
	} {
		if got := call("Normalize", c.in); got != c.want {
			t.Errorf("Normalize(%q) = %q under Yaegi, want %q", c.in, got, c.want)
		}
	}

	for _, c := range []struct{ header, peer, value, want string }{
		{"X-Forwarded-For", "10.0.0.1", "1.1.1.1, 198.51.100.7, 10.1.2.3", "198.51.100.7"},
		{"X-Forwarded-For", "203.0.113.9", "198.51.100.7", "203.0.113.9"},
		{"X-Forwarded-For", "::ffff:10.0.0.1", "198.51.100.7, garbage", "10.0.0.1"},
		{"X-Forwarded-For", "10.0.0.1", "10.0.0.7, 10.0.0.8", "10.0.0.7"},
		{"Forwarded", "127.0.0.1", `for=1.1.1.1, for="[2001:db8::17]:4711";proto=https`, "2001:db8::17"},
		{"Forwarded", "127.0.0.1", `for=198.51.100.7, for=unknown`, "127.0.0.1"},
		{"X-Real-IP", "10.0.0.1", "198.51.100.7", "198.51.100.7"},
	} {
		if got := call("ClientIP", c.header, c.peer, c.value); got != c.want {
			t.Errorf("ClientIP(%s: %q from %s) = %q under Yaegi, want %q", c.header, c.value, c.peer, got, c.want)
		}
	}

	for _, c := range []struct{ origin, want string }{
		{"https://app.example.com", "true"},
		{"https://a.b.example.org", "true"},
		{"https://example.org", "false"},
		{"https://evilexample.org", "false"},
		{"https://a.example.org.evil.com", "false"},
		{"http://a.example.org", "false"},
		{"null", "false"},
	} {
		if got := call("Origin", c.origin); got != c.want {
			t.Errorf("AllowedOrigin(%q) = %s under Yaegi, want %s", c.origin, got, c.want)
		}
	}
	wantPreflight := "true Access-Control-Allow-Origin: https://a.example.org\n" +
		"Access-Control-Allow-Methods: GET, POST\n" +
		"Access-Control-Allow-Headers: Authorization, Content-Type\n" +
		"Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\n"
	if got := call("Preflight", "https://a.example.org", "POST", "content-type"); got != wantPreflight {
		t.Errorf("Preflight under Yaegi = %q", got)
	}
	if got := call("Preflight", "https://a.example.org", "POST", "x-admin"); !strings.HasPrefix(got, "false ") {
		t.Errorf("Preflight with a header not allowed = %q under Yaegi", got)
	}
	if got := call("Actual", "https://evilexample.org"); got != "Vary: Origin\n" {
		t.Errorf("Actual for a look-alike = %q under Yaegi", got)
	}
	if got := call("Actual", "https://app.example.com"); !strings.HasPrefix(got, "Access-Control-Allow-Origin: https://app.example.com\n") {
		t.Errorf("Actual = %q under Yaegi", got)
	}

	for _, c := range []struct{ id, want string }{
		{"0190a5f2-7c3e-7b1a-9c2d-3e4f5a6b7c8d", "true"},
		{"abc\r\nX-Evil: 1", "false"},
		{strings.Repeat("a", 129), "false"},
		{"", "false"},
	} {
		if got := call("Valid", c.id); got != c.want {
			t.Errorf("Valid(%q) = %s under Yaegi", c.id, got)
		}
	}
	for _, format := range []string{"uuidv7", "uuidv4"} {
		if got := call("Generated", format, 200); got != "ok" {
			t.Errorf("generated %s under Yaegi: %s", format, got)
		}
	}
	if got := call("Generated", "ulid", 1); !strings.HasPrefix(got, "error: ") {
		t.Errorf("unknown format under Yaegi: %s", got)
	}
	if got := call("Resolve", "abc-1", true); got != "abc-1 false" {
		t.Errorf("Resolve trusted = %q under Yaegi", got)
	}
	if got := call("Resolve", "abc 1", true); got != "fresh true" {
		t.Errorf("Resolve malformed = %q under Yaegi", got)
	}

	if got := call("Strict", true); strings.Count(got, "\n") != 8 || !strings.Contains(got, "Strict-Transport-Security: max-age=63072000; includeSubDomains\n") {
		t.Errorf("Strict(true) under Yaegi = %q", got)
	}
	if got := call("Strict", false); strings.Contains(got, "Strict-Transport-Security") {
		t.Errorf("Strict(false) under Yaegi sends HSTS")
	}
	if got := call("Custom", "x-frame-options", "SAMEORIGIN"); got != "X-Frame-Options: SAMEORIGIN\n" {
		t.Errorf("Custom under Yaegi = %q", got)
	}
	if got := call("Custom", "X-Ok", "a\r\nInjected: 1"); got != "error" {
		t.Errorf("Custom accepted CRLF under Yaegi: %q", got)
	}

	want := `{"type":"https://contentguard.dev/problems/rate-limited","title":"Too Many Requests","status":429,` +
		`"detail":"\u003cb\u003e \"x\" \u2028 \ufffd","request_id":"id-1","reason":"test_reason"}`
	if got := call("Problem", 429, "rate-limited", "", "<b> \"x\" \u2028 \xff", "id-1"); got != want {
		t.Errorf("Problem JSON under Yaegi:\n got %s\nwant %s", got, want)
	}
}

// TestUnderYaegiMatchesCompiled feeds the fuzz corpora of the packages, and
// random inputs from a fixed seed, to the interpreted and the compiled
// packages: any difference is an interpreter quirk the code must avoid.
func TestUnderYaegiMatchesCompiled(t *testing.T) {
	call := prober{t, newInterpreter(t)}.call
	rnd := rand.New(rand.NewSource(1))
	random := func(alphabet []string, max int) string {
		var b strings.Builder
		for n := rnd.Intn(max + 1); n > 0; n-- {
			b.WriteString(alphabet[rnd.Intn(len(alphabet))])
		}
		return b.String()
	}
	const rounds = 400

	for _, args := range corpus(t, "edge/urlpath", "FuzzNormalize") {
		call("Normalize", args[0])
	}
	pathBits := []string{"/", "/", ".", "..", "%2e", "%2E", "%2f", "%5C", "\\", "a", "Z", "9", "~", ";", "%41", "%7e", "%25", "%zz", "%0a", " ", "\xc3\xa9", "{", "//"}
	for n := 0; n < rounds; n++ {
		call("Normalize", "/"+random(pathBits, 12))
	}

	for _, args := range corpus(t, "internal/requestid", "FuzzValid") {
		call("Valid", args[0])
		call("Resolve", args[0], true)
	}
	idBits := []string{"a", "Z", "0", "9", ".", "_", ":", "-", " ", "\r", "\n", "\xc3\xa9", "/", "+", "~"}
	for n := 0; n < rounds; n++ {
		call("Valid", random(idBits, 20))
	}

	for _, args := range corpus(t, "edge/clientip", "FuzzXForwardedFor") {
		call("ClientIP", "X-Forwarded-For", "10.0.0.1", args[0])
	}
	for _, args := range corpus(t, "edge/clientip", "FuzzForwarded") {
		call("ClientIP", "Forwarded", "10.0.0.1", args[0])
	}
	hops := []string{"198.51.100.7", "10.0.0.3", "127.0.0.1", "::ffff:10.0.0.9", "[2001:db8::1]:80", "2001:db8::2", "fe80::1%eth0", "unknown", "_x", "1.2.3.4:80", "garbage", ""}
	for n := 0; n < rounds; n++ {
		var xff, fwd []string
		for k := rnd.Intn(5); k >= 0; k-- {
			h := hops[rnd.Intn(len(hops))]
			xff = append(xff, h)
			fwd = append(fwd, "for=\""+h+"\";proto=https")
		}
		peer := []string{"10.0.0.1", "203.0.113.9", "::ffff:127.0.0.1"}[rnd.Intn(3)]
		call("ClientIP", "X-Forwarded-For", peer, strings.Join(xff, ", "))
		call("ClientIP", "Forwarded", peer, strings.Join(fwd, ", "))
		call("ClientIP", "X-Real-IP", peer, xff[0])
	}

	for _, args := range corpus(t, "edge/cors", "FuzzOrigin") {
		call("Origin", args[0])
		call("Actual", args[0])
	}
	schemes := []string{"https://", "http://", "HTTPS://", "Https://", "ftp://", "", "null"}
	hostBits := []string{"a", "B", "9", "-", "_", ".", "example", ".org", ".example.org", "app.example.com", "APP.EXAMPLE.COM", "@", "/", " ", "[::1]"}
	ports := []string{"", ":443", ":0443", ":80", ":8443", ":", ":0", ":65536"}
	for n := 0; n < rounds; n++ {
		origin := schemes[rnd.Intn(len(schemes))] + random(hostBits, 5) + ports[rnd.Intn(len(ports))]
		call("Origin", origin)
		methods := []string{"GET", "POST", "post", "DELETE", "G T"}
		reqHeaders := []string{"", "content-type", "Authorization, CONTENT-TYPE", "x-admin", "authorization,,", "a b"}
		call("Preflight", origin, methods[rnd.Intn(len(methods))], reqHeaders[rnd.Intn(len(reqHeaders))])
	}

	for _, args := range corpus(t, "edge/secheaders", "FuzzCustom") {
		call("Custom", args[0], args[1])
	}
	for _, tls := range []bool{false, true} {
		call("Strict", tls)
	}

	for _, args := range corpus(t, "edge/problem", "FuzzJSON") {
		call("Problem", args[2], args[0], args[1], args[3], args[5])
	}
	textBits := []string{"a", "\"", "\\", "<", ">", "&", "\n", "\x00", "\x1f", "\x7f", "\xff", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xc3\xa9", "\xf0\x9f\x98\x80", "\xe2\x82"}
	for n := 0; n < rounds; n++ {
		call("Problem", 400+rnd.Intn(200), random(textBits, 3), random(textBits, 6), random(textBits, 10), random(textBits, 4))
	}
}

// corpus reads the committed seed corpus of a fuzz target of pkg (a path
// in the module; Go's "go test fuzz v1" format) as argument lists.
func corpus(t testing.TB, pkg, target string) [][]interface{} {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "..", pkg, "testdata", "fuzz", target, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("corpus of %s.%s: %v (%d files)", pkg, target, err, len(files))
	}
	var all [][]interface{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		var args []interface{}
		for _, line := range lines[1:] {
			open := strings.IndexByte(line, '(')
			if open < 0 || !strings.HasSuffix(line, ")") {
				t.Fatalf("%s: cannot read %q", f, line)
			}
			kind, lit := line[:open], line[open+1:len(line)-1]
			switch kind {
			case "string":
				v, err := strconv.Unquote(lit)
				if err != nil {
					t.Fatalf("%s: %q: %v", f, lit, err)
				}
				args = append(args, v)
			case "int":
				v, err := strconv.Atoi(lit)
				if err != nil {
					t.Fatalf("%s: %q: %v", f, lit, err)
				}
				args = append(args, v)
			default:
				t.Fatalf("%s: unsupported corpus type %s", f, kind)
			}
		}
		all = append(all, args)
	}
	return all
}

// BenchmarkUnderYaegi measures per-request operations as the Traefik plugin
// runs them, interpreted, next to the same probe compiled. Each probe loops
// b.N times itself over objects built once.
func BenchmarkUnderYaegi(b *testing.B) {
	i := newInterpreter(b)
	interpreted := func(name string) reflect.Value {
		v, err := i.Eval("yaegiprobe." + name)
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name   string
		probe  string
		native interface{}
		args   []interface{}
	}{
		{"Normalize-normal", "NormalizeLoop", yaegiprobe.NormalizeLoop, []interface{}{"/api/v1/analyze/items"}},
		{"Normalize-dots", "NormalizeLoop", yaegiprobe.NormalizeLoop, []interface{}{"/api/v1/../v2/./analyze//items/"}},
		{"Valid", "ValidLoop", yaegiprobe.ValidLoop, []interface{}{"0190a5f2-7c3e-7b1a-9c2d-3e4f5a6b7c8d"}},
		{"NewV7", "NewV7Loop", yaegiprobe.NewV7Loop, nil},
		{"ClientIP-xff-3-hops", "ClientIPLoop", yaegiprobe.ClientIPLoop, []interface{}{"X-Forwarded-For", "10.0.0.1", "1.1.1.1, 198.51.100.7, 10.1.2.3"}},
		{"ClientIP-forwarded-2-hops", "ClientIPLoop", yaegiprobe.ClientIPLoop, []interface{}{"Forwarded", "10.0.0.1", `for=198.51.100.7;proto=https, for="[fd00::2]:443"`}},
		{"AllowedOrigin-exact", "OriginLoop", yaegiprobe.OriginLoop, []interface{}{"https://app.example.com"}},
		{"AllowedOrigin-wildcard", "OriginLoop", yaegiprobe.OriginLoop, []interface{}{"https://a.example.org"}},
		{"Preflight", "PreflightLoop", yaegiprobe.PreflightLoop, []interface{}{"https://a.example.org", "POST", "content-type, authorization"}},
		{"ProblemJSON", "ProblemLoop", yaegiprobe.ProblemLoop, []interface{}{"retry in 20s"}},
	}
	for _, c := range cases {
		for _, mode := range []string{"interpreted", "compiled"} {
			fn := reflect.ValueOf(c.native)
			if mode == "interpreted" {
				fn = interpreted(c.probe)
			}
			b.Run(c.name+"/"+mode, func(b *testing.B) {
				in := make([]reflect.Value, 0, len(c.args)+1)
				for _, a := range c.args {
					in = append(in, reflect.ValueOf(a))
				}
				in = append(in, reflect.ValueOf(b.N))
				b.ReportAllocs()
				b.ResetTimer()
				fn.Call(in)
			})
		}
	}
}
