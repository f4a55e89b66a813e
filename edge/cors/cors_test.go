package cors

import (
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func policyExample(t testing.TB) *Policy {
	t.Helper()
	p, err := New(Config{
		AllowOrigins:  []string{"https://app.example.com", "https://*.example.org"},
		AllowMethods:  []string{"GET", "POST"},
		AllowHeaders:  []string{"Authorization", "Content-Type", "X-Request-ID", "X-API-Key"},
		ExposeHeaders: []string{"X-Request-ID", "RateLimit-Remaining"},
		MaxAge:        10 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewValidates(t *testing.T) {
	cases := []struct {
		name    string
		c       Config
		wantErr string
	}{
		{"example", Config{AllowOrigins: []string{"https://app.example.com", "https://*.example.org", "http://localhost:3000", "http://[::1]:8080", "chrome-extension://abcdef"}}, ""},
		{"star alone", Config{AllowOrigins: []string{"*"}}, ""},
		{"star with others", Config{AllowOrigins: []string{"*", "https://a.com"}}, "only origin"},
		{"star with credentials", Config{AllowOrigins: []string{"*"}, AllowCredentials: true}, "allowCredentials"},
		{"null", Config{AllowOrigins: []string{"null"}}, "null origin"},
		{"NULL", Config{AllowOrigins: []string{"NULL"}}, "null origin"},
		{"path", Config{AllowOrigins: []string{"https://a.com/"}}, "not an origin"},
		{"userinfo", Config{AllowOrigins: []string{"https://u@a.com"}}, "not an origin"},
		{"no scheme", Config{AllowOrigins: []string{"a.com"}}, "not an origin"},
		{"space", Config{AllowOrigins: []string{"https://a.com "}}, "not an origin"},
		{"bad port", Config{AllowOrigins: []string{"https://a.com:99999"}}, "not an origin"},
		{"wildcard tld", Config{AllowOrigins: []string{"https://*.com"}}, "two or more labels"},
		{"wildcard ip", Config{AllowOrigins: []string{"https://*.10.0.0.1"}}, "IP address"},
		{"wildcard middle", Config{AllowOrigins: []string{"https://a.*.example.org"}}, "not an origin"},
		{"wildcard partial", Config{AllowOrigins: []string{"https://a*.example.org"}}, "not an origin"},
		{"double wildcard", Config{AllowOrigins: []string{"https://*.*.example.org"}}, "not scheme"},
		{"method not token", Config{AllowMethods: []string{"GE T"}}, "allowMethods[0]"},
		{"header not token", Config{AllowHeaders: []string{"X-A:"}}, "allowHeaders[0]"},
		{"method star", Config{AllowMethods: []string{"*"}}, ""},
		{"method star with others", Config{AllowMethods: []string{"*", "GET"}}, "stand alone"},
		{"expose star without credentials", Config{ExposeHeaders: []string{"*"}}, ""},
		{"expose star with credentials", Config{ExposeHeaders: []string{"*"}, AllowCredentials: true}, "stand alone"},
		{"negative max age", Config{MaxAge: -time.Second}, "negative"},
	}
	for _, c := range cases {
		_, err := New(c.c)
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: error = %v, want %q", c.name, err, c.wantErr)
		}
	}
}

func TestAllowedOrigin(t *testing.T) {
	p := policyExample(t)
	cases := []struct {
		origin string
		want   bool
	}{
		{"https://app.example.com", true},
		{"https://APP.Example.COM", true},
		{"HTTPS://app.example.com", true},
		{"https://app.example.com:443", true},
		{"https://app.example.com:0443", true},
		{"https://app.example.com:8443", false},
		{"http://app.example.com", false},
		{"https://app.example.com.evil.com", false},
		{"https://evilapp.example.com", false},
		{"https://a.example.org", true},
		{"https://a.b.example.org", true},
		{"https://A.Example.Org", true},
		{"https://a.example.org:443", true},
		{"https://example.org", false},
		{"https://.example.org", false},
		{"https://a..example.org", false},
		{"https://evilexample.org", false},
		{"https://a.example.org.evil.com", false},
		{"https://a.example.org.", false},
		{"http://a.example.org", false},
		{"https://a.example.org:8443", false},
		{"https://a.example.org/", false},
		{"https://a.example.org/x", false},
		{"https://u:p@a.example.org", false},
		{"https://a.example.org?x", false},
		{"https://a.example.org#x", false},
		{" https://a.example.org", false},
		{"https://a.example.org\r\n", false},
		{"https://a.example.org:", false},
		{"https://a.example.org:0", false},
		{"https://a.ex\u0430mple.org", false},
		{"https://*.example.org", false},
		{"https://" + strings.Repeat("a", 63) + ".example.org", true},
		{"https://" + strings.Repeat("a", 64) + ".example.org", false},
		{"null", false},
		{"", false},
		{"https://", false},
		{"://a.example.org", false},
	}
	for _, c := range cases {
		if got := p.AllowedOrigin(c.origin); got != c.want {
			t.Errorf("AllowedOrigin(%q) = %v, want %v", c.origin, got, c.want)
		}
	}

	star, err := New(Config{AllowOrigins: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"null", "", "https://a.com/x", "javascript:alert(1)"} {
		if star.AllowedOrigin(o) {
			t.Errorf("\"*\" allowed %q", o)
		}
	}
	if !star.AllowedOrigin("https://anything.test:8443") {
		t.Error("\"*\" refused a well-formed origin")
	}

	ports, err := New(Config{AllowOrigins: []string{"http://localhost:3000", "http://[::1]:8080", "https://*.example.net:8443", "http://example.com:80"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		origin string
		want   bool
	}{
		{"http://localhost:3000", true},
		{"http://localhost", false},
		{"http://localhost:3001", false},
		{"http://[::1]:8080", true},
		{"http://[0:0::1]:8080", false}, // origins are compared as serialised, not as addresses
		{"https://a.example.net:8443", true},
		{"https://a.example.net", false},
		{"http://example.com", true},
		{"http://example.com:80", true},
	} {
		if got := ports.AllowedOrigin(c.origin); got != c.want {
			t.Errorf("ports: AllowedOrigin(%q) = %v, want %v", c.origin, got, c.want)
		}
	}
}

func TestIsPreflight(t *testing.T) {
	h := http.Header{"Origin": {"https://a.example.org"}, "Access-Control-Request-Method": {"POST"}}
	if !IsPreflight("OPTIONS", h) {
		t.Error("a preflight was not recognised")
	}
	if IsPreflight("GET", h) {
		t.Error("GET is not a preflight")
	}
	if IsPreflight("OPTIONS", http.Header{"Origin": {"https://a.example.org"}}) {
		t.Error("OPTIONS without Access-Control-Request-Method is not a preflight")
	}
	if IsPreflight("OPTIONS", http.Header{"Access-Control-Request-Method": {"POST"}}) {
		t.Error("OPTIONS without Origin is not a preflight")
	}
}

func TestPreflight(t *testing.T) {
	p := policyExample(t)
	refused := [][2]string{{"Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}}
	cases := []struct {
		name string
		h    http.Header
		ok   bool
		want [][2]string
	}{
		{"allowed", http.Header{
			"Origin":                         {"https://a.example.org"},
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {"content-type, x-request-id,AUTHORIZATION"},
		}, true, [][2]string{
			{"Access-Control-Allow-Origin", "https://a.example.org"},
			{"Access-Control-Allow-Methods", "GET, POST"},
			{"Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-ID, X-API-Key"},
			{"Access-Control-Max-Age", "600"},
			{"Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"},
		}},
		{"no requested headers", http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"GET"}}, true, nil},
		{"header lines and empty elements", http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"authorization,", " ,x-api-key"}}, true, nil},
		{"origin refused", http.Header{"Origin": {"https://evilexample.org"}, "Access-Control-Request-Method": {"GET"}}, false, refused},
		{"null origin", http.Header{"Origin": {"null"}, "Access-Control-Request-Method": {"GET"}}, false, refused},
		{"two origins", http.Header{"Origin": {"https://app.example.com", "https://a.example.org"}, "Access-Control-Request-Method": {"GET"}}, false, refused},
		{"method refused", http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"DELETE"}}, false, refused},
		{"method case matters", http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"post"}}, false, refused},
		{"header refused", http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"authorization, x-admin"}}, false, refused},
		{"header not a token", http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"authorization x-api-key"}}, false, refused},
		{"too many headers", http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {strings.Repeat("authorization,", MaxRequestHeaders+1)}}, false, refused},
		{"header list too long", http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {strings.Repeat(" ", MaxRequestHeaderSize) + "authorization"}}, false, refused},
	}
	for _, c := range cases {
		got, ok := p.Preflight(c.h)
		if ok != c.ok {
			t.Errorf("%s: ok = %v, want %v (%v)", c.name, ok, c.ok, got)
			continue
		}
		if c.want != nil && !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: headers\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

func TestPreflightStarsAndCredentials(t *testing.T) {
	p, err := New(Config{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := p.Preflight(http.Header{"Origin": {"https://x.test"}, "Access-Control-Request-Method": {"PATCH"}, "Access-Control-Request-Headers": {"x-one, x-two"}})
	want := [][2]string{
		{"Access-Control-Allow-Origin", "*"},
		{"Access-Control-Allow-Methods", "PATCH"},
		{"Access-Control-Allow-Headers", "x-one, x-two"},
		{"Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"},
	}
	if !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("stars: %v %q", ok, got)
	}
	if _, ok := p.Preflight(http.Header{"Origin": {"null"}, "Access-Control-Request-Method": {"GET"}}); ok {
		t.Error("stars allowed the null origin")
	}

	c, err := New(Config{AllowOrigins: []string{"https://app.example.com"}, AllowMethods: []string{"GET"}, AllowCredentials: true})
	if err != nil {
		t.Fatal(err)
	}
	got, ok = c.Preflight(http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"GET"}})
	want = [][2]string{
		{"Access-Control-Allow-Origin", "https://app.example.com"},
		{"Access-Control-Allow-Methods", "GET"},
		{"Access-Control-Allow-Credentials", "true"},
		{"Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"},
	}
	if !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("credentials: %v %q", ok, got)
	}
}

func TestActual(t *testing.T) {
	p := policyExample(t)
	want := [][2]string{
		{"Access-Control-Allow-Origin", "https://a.b.example.org"},
		{"Access-Control-Expose-Headers", "X-Request-ID, RateLimit-Remaining"},
		{"Vary", "Origin"},
	}
	if got := p.Actual("https://a.b.example.org"); !reflect.DeepEqual(got, want) {
		t.Errorf("allowed: %q", got)
	}
	for _, o := range []string{"https://a.example.org.evil.com", "null", ""} {
		if got := p.Actual(o); !reflect.DeepEqual(got, [][2]string{{"Vary", "Origin"}}) {
			t.Errorf("Actual(%q) = %q, want only Vary", o, got)
		}
	}

	star, _ := New(Config{AllowOrigins: []string{"*"}})
	if got := star.Actual("https://x.test"); !reflect.DeepEqual(got, [][2]string{{"Access-Control-Allow-Origin", "*"}, {"Vary", "Origin"}}) {
		t.Errorf("star: %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { star.Actual("https://x.test") }); n != 0 {
		t.Errorf("star Actual allocates %v times", n)
	}

	cred, _ := New(Config{AllowOrigins: []string{"https://app.example.com"}, AllowCredentials: true})
	want = [][2]string{
		{"Access-Control-Allow-Origin", "https://app.example.com"},
		{"Access-Control-Allow-Credentials", "true"},
		{"Vary", "Origin"},
	}
	if got := cred.Actual("https://app.example.com"); !reflect.DeepEqual(got, want) {
		t.Errorf("credentials: %q", got)
	}
}

// exampleOracle is an independent statement of which origins policyExample
// allows, applied to the ASCII-lower-cased origin.
var exampleOracle = regexp.MustCompile(`^https://(app\.example\.com|([a-z0-9_-]{1,63}\.)+example\.org)(:0{0,2}443)?$`)

func asciiLower(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

func FuzzOrigin(f *testing.F) {
	for _, s := range []string{"https://a.example.org", "https://example.org", "https://a.example.org.evil.com", "null",
		"https://App.Example.com:443", "http://[::1]:8080", "https://u@a.example.org", "https://a.example.org:0443"} {
		f.Add(s)
	}
	p := policyExample(f)
	f.Fuzz(func(t *testing.T, origin string) {
		got := p.AllowedOrigin(origin)
		want := len(origin) <= MaxOriginLen && exampleOracle.MatchString(asciiLower(origin))
		if got != want {
			t.Fatalf("AllowedOrigin(%q) = %v, oracle says %v", origin, got, want)
		}
		scheme, host, port, ok := parseOrigin(origin)
		if !ok {
			return
		}
		if strings.ContainsAny(origin, " \t\r\n/@?#\\") && !strings.HasPrefix(origin[len(scheme):], "://") {
			t.Fatalf("parsed %q", origin)
		}
		if strings.ContainsAny(origin[len(scheme)+3:], " \t\r\n/@?#\\") || origin == "null" {
			t.Fatalf("parsed %q with forbidden characters", origin)
		}
		c := canonical(scheme, host, port)
		s2, h2, p2, ok2 := parseOrigin(c)
		if !ok2 || canonical(s2, h2, p2) != c || !isCanonical(c, s2, h2, p2) {
			t.Fatalf("canonical form %q of %q does not round-trip", c, origin)
		}
	})
}

func BenchmarkPreflight(b *testing.B) {
	p := policyExample(b)
	h := http.Header{
		"Origin":                         {"https://a.example.org"},
		"Access-Control-Request-Method":  {"POST"},
		"Access-Control-Request-Headers": {"content-type, authorization"},
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, ok := p.Preflight(h); !ok {
			b.Fatal("refused")
		}
	}
}

func BenchmarkAllowedOrigin(b *testing.B) {
	p := policyExample(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !p.AllowedOrigin("https://app.example.com") {
			b.Fatal("refused")
		}
	}
}
