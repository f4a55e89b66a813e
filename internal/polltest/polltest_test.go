package polltest

import (
	"sync/atomic"
	"testing"
	"time"
)

// Until returns true once cond holds, and false for a cond that never does.
func TestUntil(t *testing.T) {
	var n atomic.Int64
	go func() {
		for i := 0; i < 3; i++ {
			n.Add(1)
		}
	}()
	if !Until(10*time.Second, func() bool { return n.Load() == 3 }) {
		t.Fatalf("n = %d, want 3", n.Load())
	}
	calls := 0
	if !Until(10*time.Second, func() bool { calls++; return calls == 3 }) || calls != 3 {
		t.Fatalf("cond called %d times, want 3: Until checks until it holds", calls)
	}
	if Until(10*time.Millisecond, func() bool { return false }) {
		t.Fatal("a condition that never holds was reported as held")
	}
}
