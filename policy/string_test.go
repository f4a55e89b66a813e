package policy

import "testing"

// TestStringCountsRoutes: the summary logs and `policy validate` print
// reads as English for one route too ("1 routes" was printed).
func TestStringCountsRoutes(t *testing.T) {
	for n, want := range map[int]string{1: "p@0123456789ab (1 route)", 2: "p@0123456789ab (2 routes)"} {
		p := &Policy{Metadata: Metadata{Name: "p"}, Hash: "0123456789abcdef", Spec: Spec{Routes: make([]Route, n)}}
		if got := p.String(); got != want {
			t.Errorf("%d routes: %q, want %q", n, got, want)
		}
	}
}
