package secheaders

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestStrict(t *testing.T) {
	want := map[string]string{
		"X-Content-Type-Options":       "nosniff",
		"X-Frame-Options":              "DENY",
		"Referrer-Policy":              "strict-origin-when-cross-origin",
		"Content-Security-Policy":      "default-src 'none'; frame-ancestors 'none'",
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Resource-Policy": "same-origin",
	}
	for _, tls := range []bool{false, true} {
		got := map[string]string{}
		for _, kv := range Strict(tls) {
			if _, dup := got[kv[0]]; dup {
				t.Fatalf("tls=%v: %s twice", tls, kv[0])
			}
			if http.CanonicalHeaderKey(kv[0]) != kv[0] {
				t.Errorf("%s is not canonical", kv[0])
			}
			got[kv[0]] = kv[1]
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("tls=%v: %s = %q, want %q", tls, k, got[k], v)
			}
		}
		for _, feature := range []string{"camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()", "interest-cohort=()"} {
			if !strings.Contains(got["Permissions-Policy"], feature) {
				t.Errorf("Permissions-Policy lacks %s", feature)
			}
		}
		hsts, has := got["Strict-Transport-Security"]
		if has != tls {
			t.Errorf("tls=%v: HSTS present = %v", tls, has)
		}
		if tls && hsts != "max-age=63072000; includeSubDomains" {
			t.Errorf("HSTS = %q", hsts)
		}
		if len(got) != len(want)+1+btoi(tls) {
			t.Errorf("tls=%v: %d headers: %v", tls, len(got), got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Strict(true); Strict(false) }); n != 0 {
		t.Errorf("Strict allocates %v times", n)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestCustom(t *testing.T) {
	got, err := Custom(map[string]string{
		"x-frame-options":         "SAMEORIGIN",
		"Content-Security-Policy": "default-src 'self'",
		"X-Empty":                 "",
		"x-tab":                   "a\tb",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{
		{"Content-Security-Policy", "default-src 'self'"},
		{"X-Empty", ""},
		{"X-Frame-Options", "SAMEORIGIN"},
		{"X-Tab", "a\tb"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Custom = %q, want %q", got, want)
	}
	if got, err := Custom(nil); err != nil || len(got) != 0 {
		t.Errorf("Custom(nil) = %v, %v", got, err)
	}

	bad := []struct {
		m       map[string]string
		wantErr string
	}{
		{map[string]string{"": "x"}, "not a token"},
		{map[string]string{"X Bad": "x"}, "not a token"},
		{map[string]string{"X-Bad:": "x"}, "not a token"},
		{map[string]string{"X-Bad\r\nInjected": "x"}, "not a token"},
		{map[string]string{"X-Ok": "a\r\nInjected: 1"}, "control character 0xd"},
		{map[string]string{"X-Ok": "a\nb"}, "control character 0xa"},
		{map[string]string{"X-Ok": "a\x00b"}, "control character 0x0"},
		{map[string]string{"X-Ok": "a\x7fb"}, "control character 0x7f"},
		{map[string]string{"X-Dup": "a", "x-dup": "b"}, "given twice"},
	}
	for _, c := range bad {
		if _, err := Custom(c.m); err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("Custom(%q) error = %v, want %q", c.m, err, c.wantErr)
		}
	}
}

// FuzzCustom: whatever Custom accepts is safe to write into a header.
func FuzzCustom(f *testing.F) {
	f.Add("X-Frame-Options", "DENY")
	f.Add("X-Bad\r\n", "x")
	f.Add("X-Ok", "a\r\nb")
	f.Add("x-a", "\t")
	f.Fuzz(func(t *testing.T, name, value string) {
		got, err := Custom(map[string]string{name: value})
		if err != nil {
			return
		}
		if len(got) != 1 || got[0][1] != value {
			t.Fatalf("Custom(%q: %q) = %q", name, value, got)
		}
		if strings.ContainsAny(got[0][0], " \t\r\n:\x00") || strings.ContainsAny(value, "\r\n\x00") {
			t.Fatalf("accepted unsafe header %q: %q", name, value)
		}
	})
}

func BenchmarkStrict(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = Strict(i&1 == 0)
	}
}
