package httpsyntax

import (
	"strings"
	"testing"
)

func TestIsToken(t *testing.T) {
	cases := []struct {
		s    string
		want bool
	}{
		{"", false},
		{"GET", true},
		{"X-Request-ID", true},
		{"!#$%&'*+-.^_`|~09azAZ", true},
		{"a b", false},
		{"a:b", false},
		{"a\r\n", false},
		{"\"a\"", false},
		{"a,b", false},
		{"a;b", false},
		{"a=b", false},
		{"caf\u00e9", false},
		{"a\x7f", false},
		{"(a)", false},
	}
	for _, c := range cases {
		if got := IsToken(c.s); got != c.want {
			t.Errorf("IsToken(%q) = %v, want %v", c.s, got, c.want)
		}
	}
	// TokenChars is exactly the token alphabet.
	for c := 0; c < 256; c++ {
		want := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
		if got := IsToken(string([]byte{byte(c)})); got != want {
			t.Errorf("IsToken(%q) = %v", byte(c), got)
		}
	}
}

func TestNewFilter(t *testing.T) {
	f := NewFilter("ab")
	cases := []struct {
		s    string
		only bool
	}{
		{"", true},
		{"abba", true},
		{"abcab", false},
		{"cab", false},
		{"a\xffb", false},
		{"a\x00b", false},
	}
	for _, c := range cases {
		if got := len(f.Replace(c.s)) == len(c.s); got != c.only {
			t.Errorf("filter(ab) on %q: only = %v", c.s, got)
		}
	}
	all := NewFilter("")
	for c := 0; c < 256; c++ {
		if s := string([]byte{byte(c)}); all.Replace(s) != "" {
			t.Errorf("the empty filter kept %q", s)
		}
	}
	if n := testing.AllocsPerRun(100, func() { f.Replace("abababababababab") }); n != 0 {
		t.Errorf("a passing check allocates %v times", n)
	}
}
