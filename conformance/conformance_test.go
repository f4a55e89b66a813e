package conformance

import (
	"path/filepath"
	"testing"
)

// TestCasesLoad checks that the suite parses, names are unique, and that it
// covers at least the 80 cases the foundation promises.
func TestCasesLoad(t *testing.T) {
	cases, err := Load(Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 80 {
		t.Fatalf("only %d conformance cases; the suite promises at least 80", len(cases))
	}
	m, err := NewMinter(filepath.Join(Dir(), "testdata", "keys"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		for i, s := range c.Steps {
			if s.Expect.Status == 0 {
				t.Errorf("%s step %d: no expected status", c.Name, i+1)
			}
			if _, err := m.Resolve(s.Request); err != nil {
				t.Errorf("%s step %d: %v", c.Name, i+1, err)
			}
		}
	}
}
