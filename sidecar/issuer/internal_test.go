package issuer

import (
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/contentguard/contentguard/policy"
)

// TestDummyHashMatchesTheCostliestPrincipal: an unknown name is compared
// against a hash as slow as the slowest real one, so timing does not tell
// which names exist.
func TestDummyHashMatchesTheCostliestPrincipal(t *testing.T) {
	h4, _ := bcrypt.GenerateFromPassword([]byte("a"), 4)
	h6, _ := bcrypt.GenerateFromPassword([]byte("b"), 6)
	got := map[string]principal{}
	dummy, err := addPrincipals(got, []policy.Principal{{Name: "x", Bcrypt: string(h4)}, {Name: "y", Bcrypt: string(h6)}}, "user")
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := bcrypt.Cost(dummy); c != 6 {
		t.Errorf("dummy cost %d, want 6", c)
	}
	if len(got) != 2 || got["y"].kind != "user" {
		t.Errorf("principals %v", got)
	}
	if _, err := addPrincipals(map[string]principal{}, []policy.Principal{{Name: "z", Bcrypt: "$2a$xx"}}, "user"); err == nil {
		t.Error("a broken hash must be refused")
	}
}

func TestParseScope(t *testing.T) {
	for in, want := range map[string]string{"": "", "read  write read": "read write", " a ": "a"} {
		got, ok := parseScope(in)
		if !ok || joinSpace(got) != want {
			t.Errorf("parseScope(%q) = %v %v, want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"a\"b", "a\\b", "é", "a\tb"} {
		if _, ok := parseScope(bad); ok {
			t.Errorf("parseScope(%q) accepted", bad)
		}
	}
}

func joinSpace(s []string) string {
	out := ""
	for k, v := range s {
		if k > 0 {
			out += " "
		}
		out += v
	}
	return out
}
