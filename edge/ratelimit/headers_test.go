package ratelimit_test

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge/ratelimit"
)

func TestHeaders(t *testing.T) {
	ok := ratelimit.Result{Allowed: true, Limit: 20, Remaining: 7, Reset: 1500 * time.Millisecond}
	no := ratelimit.Result{Limit: 3, Reset: time.Hour, RetryAfter: 20*time.Minute + time.Microsecond}
	soon := ratelimit.Result{Limit: 600, Reset: 59 * time.Second, RetryAfter: time.Millisecond}
	cases := []struct {
		style string
		r     ratelimit.Result
		want  [][2]string
	}{
		{ratelimit.StyleIETF, ok, [][2]string{{"RateLimit-Limit", "20"}, {"RateLimit-Remaining", "7"}, {"RateLimit-Reset", "2"}}},
		{ratelimit.StyleLegacy, ok, [][2]string{{"X-RateLimit-Limit", "20"}, {"X-RateLimit-Remaining", "7"}, {"X-RateLimit-Reset", "2"}}},
		{ratelimit.StyleBoth, ok, [][2]string{
			{"RateLimit-Limit", "20"}, {"RateLimit-Remaining", "7"}, {"RateLimit-Reset", "2"},
			{"X-RateLimit-Limit", "20"}, {"X-RateLimit-Remaining", "7"}, {"X-RateLimit-Reset", "2"}}},
		{ratelimit.StyleNone, ok, nil},
		{ratelimit.StyleIETF, no, [][2]string{{"RateLimit-Limit", "3"}, {"RateLimit-Remaining", "0"}, {"RateLimit-Reset", "3600"}, {"Retry-After", "1201"}}},
		{ratelimit.StyleLegacy, no, [][2]string{{"X-RateLimit-Limit", "3"}, {"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset", "3600"}, {"Retry-After", "1201"}}},
		{ratelimit.StyleNone, no, [][2]string{{"Retry-After", "1201"}}},
		{ratelimit.StyleNone, soon, [][2]string{{"Retry-After", "1"}}}, // never 0
		{"bogus", ok, [][2]string{{"RateLimit-Limit", "20"}, {"RateLimit-Remaining", "7"}, {"RateLimit-Reset", "2"}}},
	}
	for _, c := range cases {
		if got := ratelimit.Headers(c.style, c.r); !reflect.DeepEqual(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("%s %+v:\n got %q\nwant %q", c.style, c.r, got, c.want)
		}
	}
}

// AppendHeaders into a slice with room allocates once: the shared values.
func TestAppendHeadersAllocs(t *testing.T) {
	dst := make([][2]string, 0, 8)
	r := ratelimit.Result{Limit: 600, Remaining: 431, Reset: 17 * time.Second, RetryAfter: 3 * time.Second}
	allocs := testing.AllocsPerRun(100, func() { dst = ratelimit.AppendHeaders(dst[:0], ratelimit.StyleBoth, r) })
	if allocs > 1 {
		t.Fatalf("%.0f allocations, want at most 1", allocs)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{-time.Second: 1, 0: 1, 1: 1, time.Second: 1, time.Second + 1: 2, 90 * time.Second: 90} {
		if got := ratelimit.RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%s) = %d, want %d", d, got, want)
		}
	}
}

func TestValidStyle(t *testing.T) {
	for _, s := range []string{"ietf", "legacy", "both", "none"} {
		if !ratelimit.ValidStyle(s) {
			t.Errorf("%q not valid", s)
		}
	}
	if ratelimit.ValidStyle("IETF") || ratelimit.ValidStyle("") {
		t.Error("case or empty accepted")
	}
}

func TestIPKey(t *testing.T) {
	cases := map[string]string{
		"203.0.113.7":                 "203.0.113.7",
		"::ffff:203.0.113.7":          "203.0.113.7",
		"2001:db8:1:2:aaaa:bbbb:cc:d": "2001:db8:1:2::/64",
		"2001:db8:1:2::1":             "2001:db8:1:2::/64",
		"2001:db8:1:3::1":             "2001:db8:1:3::/64",
		"fe80::1%eth0":                "fe80::/64",
		"::1":                         "::/64",
	}
	for in, want := range cases {
		if got := ratelimit.IPKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("IPKey(%s) = %q, want %q", in, got, want)
		}
	}
	if got := ratelimit.IPKey(netip.Addr{}); got != "" {
		t.Errorf("IPKey(zero) = %q", got)
	}
}
