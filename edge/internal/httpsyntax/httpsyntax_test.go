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
}

func TestOnlyOf(t *testing.T) {
	cases := []struct {
		s, set string
		only   bool
	}{
		{"", "ab", true},
		{"abba", "ab", true},
		{"abcab", "ab", false},
		{"cab", "ab", false},
		{"a\xffb", "ab", false},
	}
	for _, c := range cases {
		if got := OnlyOf(c.s, c.set); got != c.only {
			t.Errorf("OnlyOf(%q, %q) = %v", c.s, c.set, got)
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
