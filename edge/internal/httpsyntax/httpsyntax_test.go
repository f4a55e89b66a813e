package httpsyntax

import "testing"

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

func TestTrimOWS(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{" \t ", ""},
		{" a b\t", "a b"},
		{"\na\n", "\na\n"},
	}
	for _, c := range cases {
		if got := TrimOWS(c.in); got != c.want {
			t.Errorf("TrimOWS(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
