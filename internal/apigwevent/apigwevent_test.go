package apigwevent

import (
	"testing"
)

func TestHeaderQueryStagePath(t *testing.T) {
	h := Header(map[string][]string{"X-A": {"1", "2"}}, map[string]string{"x-a": "single", "X-B": "3"})
	if got := h.Values("X-A"); len(got) != 2 || got[1] != "2" || h.Get("X-B") != "3" {
		t.Fatalf("header %v: multi values win, single fills the rest", h)
	}
	if got := Header(nil, map[string]string{"content-type": "text/plain"}); got.Get("Content-Type") != "text/plain" {
		t.Fatalf("header %v", got)
	}
	if got := Query(map[string][]string{"a": {"1", "2"}}, map[string]string{"a": "x", "b": "y z"}); got != "a=1&a=2&b=y+z" {
		t.Fatalf("query %q", got)
	}
	for _, tc := range [][3]string{
		{"/prod/analyze", "prod", "/analyze"},
		{"/analyze", "$default", "/analyze"},
		{"/production/x", "prod", "/production/x"},
		{"/prod", "prod", "/prod"},
	} {
		if got := StagePath(tc[0], tc[1]); got != tc[2] {
			t.Errorf("StagePath(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}
