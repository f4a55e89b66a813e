package urlpath

import (
	"path"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	cases := []struct {
		in   string
		want string // "" means refused
	}{
		// Already normal: returned as is.
		{"/", "/"},
		{"/healthz", "/healthz"},
		{"/api/v1/analyze", "/api/v1/analyze"},
		{"/api/v1/", "/api/v1/"},
		{"/a:b@c/!$&'()*+,;=~", "/a:b@c/!$&'()*+,;=~"},

		// Dot segments (RFC 3986 §5.2.4).
		{"/api/v1/../admin/", "/api/admin/"},
		{"/x/../admin/", "/admin/"},
		{"/a/./b/", "/a/b/"},
		{"/a/b/..", "/a/"},
		{"/a/b/.", "/a/b/"},
		{"/..", "/"},
		{"/../admin", "/admin"},
		{"/../../../etc/passwd", "/etc/passwd"},
		{"/a/../../b", "/b"},
		{"/.", "/"},
		{"/./", "/"},
		{"/a/...", "/a/..."},
		{"/a/.b/..c/", "/a/.b/..c/"},
		{"/.well-known/jwks.json", "/.well-known/jwks.json"},

		// Duplicate slashes.
		{"//admin/", "/admin/"},
		{"///a////b//", "/a/b/"},
		{"/a//../b", "/b"},

		// Percent-encoded dots and slashes.
		{"/%2e%2e/admin", "/admin"},
		{"/%2E%2e/%2e/admin", "/admin"},
		{"/api/v1%2F..%2Fadmin", "/api/admin"},
		{"/api/v1%2f..%2fadmin", "/api/admin"},
		{"/api%2F%2Fadmin", "/api/admin"},
		{"/public/.%2e/admin/", "/admin/"},
		{"/public%5C..%5Cadmin", "/admin"},
		{"/public\\..\\admin", "/admin"},
		{"/public/%2e%2e%5cadmin", "/admin"},

		// Never decode twice.
		{"/%252e%252e/admin", "/%252e%252e/admin"},
		{"/a/%252F/b", "/a/%252F/b"},
		{"/%25", "/%25"},

		// Unreserved escapes decode, others are kept with upper-case hex.
		{"/%41%62%63%2D%5F%7E%30", "/Abc-_~0"},
		{"/caf%c3%a9", "/caf%C3%A9"},
		{"/a%20b", "/a%20b"},
		{"/a%3fb%23c", "/a%3Fb%23c"},
		{"/a%3bb", "/a%3Bb"},

		// Raw bytes that need encoding.
		{"/a b", "/a%20b"},
		{"/caf\xc3\xa9", "/caf%C3%A9"},
		{"/{x}|^`[]\"<>", "/%7Bx%7D%7C%5E%60%5B%5D%22%3C%3E"},

		// Tomcat-style dot segments with parameters are refused.
		{"/public/..;/admin/", ""},
		{"/public/.;x/admin/", ""},
		{"/public/..;", ""},
		{"/public/%2e%2e;/admin/", ""},
		{"/public/..%3b/admin/", "/public/..%3B/admin/"},
		{"/public/...;/admin/", "/public/...;/admin/"},
		{"/a;b/c", "/a;b/c"},

		// Refused.
		{"", ""},
		{"admin/", ""},
		{"*", ""},
		{"%2Fadmin", ""},
		{"/a%zz", ""},
		{"/a%4", ""},
		{"/a%", ""},
		{"/a%%41", ""},
		{"/a%00b", ""},
		{"/a\x00b", ""},
		{"/a%0d%0aX-Evil:1", ""},
		{"/a\r\nb", ""},
		{"/a\tb", ""},
		{"/a%7f", ""},
		{"/a\x7f", ""},
		{"/a%u002e", ""},
		{"/" + strings.Repeat("a", MaxLen), ""},
		{"/" + strings.Repeat("a", MaxLen-1), "/" + strings.Repeat("a", MaxLen-1)},
		// Encoding raw bytes would make it longer than MaxLen.
		{"/" + strings.Repeat("a", MaxLen-3) + " ", ""},
	}
	for _, c := range cases {
		got, ok := Normalize(c.in)
		if c.want == "" {
			if ok {
				t.Errorf("Normalize(%q) = %q, want refused", c.in, got)
			}
			continue
		}
		if !ok || got != c.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}

// TestStripParameters: ';' path parameters are cut as a servlet container
// cuts them, escaped or not, and what the cut uncovers is normalised.
func TestStripParameters(t *testing.T) {
	cases := []struct {
		in, want string
		has      bool
	}{
		{"/admin/", "/admin/", false},
		{"/a/b", "/a/b", false},
		{"/admin;x/", "/admin/", true},
		{"/admin;jsessionid=1", "/admin", true},
		{"/api;v=1/users;id=2/x", "/api/users/x", true},
		{"/admin%3Bx/", "/admin/", true},
		{"/a/;x/b", "/a/b", true},
		{"/.%3Bx/admin/", "/admin/", true},
		{"/;", "/", true},
	}
	for _, c := range cases {
		if got := HasParameter(c.in); got != c.has {
			t.Errorf("HasParameter(%q) = %v, want %v", c.in, got, c.has)
		}
		if got := StripParameters(c.in); got != c.want {
			t.Errorf("StripParameters(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// On normal paths (the only input it gets), stripping agrees with
	// normalising first: the result is normal and has no parameter.
	for _, in := range []string{"/public/x;a/..;b/admin", "/public/x%3B/%2e%2e/admin", "/a;/b;c/;/"} {
		n, ok := Normalize(in)
		if !ok {
			continue
		}
		out := StripParameters(n)
		if again, _ := Normalize(out); again != out || HasParameter(out) {
			t.Errorf("StripParameters(%q) = %q: not normal or still has a parameter", n, out)
		}
	}
}

func TestNormalizeNormalPathDoesNotAllocate(t *testing.T) {
	p := "/api/v1/analyze/items"
	allocs := testing.AllocsPerRun(100, func() {
		if got, ok := Normalize(p); !ok || got != p {
			t.Fatalf("Normalize(%q) = %q, %v", p, got, ok)
		}
	})
	if allocs != 0 {
		t.Errorf("normal path: %v allocations, want 0", allocs)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/", "/api/v1/../admin/", "//admin/", "/%2e%2e/admin", "/api/v1%2F..%2Fadmin", "/a/./b/",
		"/%252e/", "/a%zz", "/public/..;/admin", "/a\\..\\b", "/caf\xc3\xa9", "/a%00", "/a/b/..",
		"/admin;x/", "/.%3bx/admin", "/a/;x/b;y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := Normalize(in)
		if !ok {
			if out != "" {
				t.Fatalf("refused %q but returned %q", in, out)
			}
			return
		}
		again, ok2 := Normalize(out)
		if !ok2 || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, ok2)
		}
		if !strings.HasPrefix(out, "/") || len(out) > MaxLen {
			t.Fatalf("%q -> %q: bad start or length", in, out)
		}
		for _, bad := range []string{"//", "/./", "/../", "\\"} {
			if strings.Contains(out, bad) {
				t.Fatalf("%q -> %q contains %q", in, out, bad)
			}
		}
		if strings.HasSuffix(out, "/..") || strings.HasSuffix(out, "/.") {
			t.Fatalf("%q -> %q ends in a dot segment", in, out)
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c <= ' ' || c >= 0x7f {
				t.Fatalf("%q -> %q has raw byte %#x", in, out, c)
			}
		}
		// Parameters stripped (spec.paths.allowParameters): still normal,
		// none left, and nothing to strip is nothing changed.
		stripped := StripParameters(out)
		if again, ok := Normalize(stripped); !ok || again != stripped || HasParameter(stripped) {
			t.Fatalf("%q -> %q -> StripParameters %q: not normal or a parameter left", in, out, stripped)
		}
		if !HasParameter(out) && stripped != out {
			t.Fatalf("%q: StripParameters changed %q to %q", in, out, stripped)
		}
		// Differential check against path.Clean for plain paths.
		if strings.Trim(in, "/.abc") == "" {
			want := path.Clean(in)
			if strings.TrimSuffix(out, "/") != strings.TrimSuffix(want, "/") {
				t.Fatalf("%q -> %q, path.Clean says %q", in, out, want)
			}
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	for _, bc := range []struct{ name, path string }{
		{"normal", "/api/v1/analyze/items"},
		{"dots", "/api/v1/../v2/./analyze//items/"},
		{"escaped", "/api/v1%2F..%2Fadmin/%7Euser/caf%c3%a9"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, ok := Normalize(bc.path); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}
