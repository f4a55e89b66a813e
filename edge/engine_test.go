package edge

import (
	"net/netip"
	"testing"

	"github.com/contentguard/contentguard/edge/ratelimit"
)

// TestIPKeyMatchesRatelimit: the engine's allocation-free bucket key is the
// ratelimit package's IPKey, so every data plane groups addresses alike.
func TestIPKeyMatchesRatelimit(t *testing.T) {
	for _, s := range []string{"198.51.100.7", "::ffff:198.51.100.7", "2001:db8:1:2::1", "2001:db8:1:2:ffff::9%eth0", "::1"} {
		a := netip.MustParseAddr(s)
		if got, want := ipKey("r|", a), "r|ip:"+ratelimit.IPKey(a); got != want {
			t.Errorf("%s: %q, want %q", s, got, want)
		}
	}
	if got := ipKey("r|", netip.Addr{}); got != "r|ip:" {
		t.Errorf("zero address: %q", got)
	}
}
