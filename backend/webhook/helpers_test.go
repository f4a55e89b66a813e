package webhook

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/contentguard/contentguard/backend/internal/envelopetest"
)

type testResponder = envelopetest.Responder

// staticResolver answers every name from a table (or fallback), so tests do
// not depend on DNS. answers are consumed in order per name when several
// are given, the last one repeating: that models DNS rebinding.
type staticResolver struct {
	mu       sync.Mutex
	answers  map[string][][]netip.Addr
	fallback []netip.Addr
	calls    map[string]int
}

func (r *staticResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	seq, ok := r.answers[host]
	if !ok {
		if r.fallback == nil {
			return nil, &netErr{host}
		}
		return r.fallback, nil
	}
	i := r.calls[host]
	r.calls[host]++
	if i >= len(seq) {
		i = len(seq) - 1
	}
	return seq[i], nil
}

type netErr struct{ host string }

func (e *netErr) Error() string { return "no such host " + e.host }

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// closeDeliverer closes d at test end, bounded.
func closeDeliverer(t *testing.T, d *Deliverer) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}
