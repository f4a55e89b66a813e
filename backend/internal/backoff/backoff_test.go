package backoff

import (
	"testing"
	"time"
)

func TestCeilingDoublesFromBaseToCap(t *testing.T) {
	b := FullJitter{Base: time.Second, Cap: 5 * time.Minute}
	want := []time.Duration{time.Second, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute}
	for n, w := range want {
		if got := b.Ceiling(n); got != w {
			t.Errorf("Ceiling(%d) = %v, want %v", n, got, w)
		}
	}
	for _, n := range []int{12, 40, 64, 1 << 20} {
		if got := b.Ceiling(n); got != 5*time.Minute {
			t.Errorf("Ceiling(%d) = %v, want the cap", n, got)
		}
	}
}

// TestDelayDrawsFromZeroToCeiling: with a random source that returns its
// bound, the delay is the ceiling; with one that returns 0, it is 0.
func TestDelayDrawsFromZeroToCeiling(t *testing.T) {
	top := FullJitter{Base: 500 * time.Millisecond, Cap: 30 * time.Second, Rand: func(n int64) int64 { return n }}
	bottom := top
	bottom.Rand = func(int64) int64 { return 0 }
	for n := 1; n <= 10; n++ {
		if got := top.Delay(n); got != top.Ceiling(n) {
			t.Errorf("Delay(%d) at the top of the range = %v, want %v", n, got, top.Ceiling(n))
		}
		if got := bottom.Delay(n); got != 0 {
			t.Errorf("Delay(%d) at the bottom = %v, want 0", n, got)
		}
	}
}

// TestDelayIsFullJitter with the real random source: every draw is within
// [0, ceiling] and draws below a tenth of it occur (equal jitter, which
// waits at least half, would never give one).
func TestDelayIsFullJitter(t *testing.T) {
	b := FullJitter{Base: 100 * time.Millisecond, Cap: time.Second}
	for n := 1; n <= 8; n++ {
		low := false
		for i := 0; i < 500; i++ {
			d := b.Delay(n)
			if d < 0 || d > b.Ceiling(n) {
				t.Fatalf("Delay(%d) = %v outside [0, %v]", n, d, b.Ceiling(n))
			}
			low = low || d < b.Ceiling(n)/10
		}
		if !low {
			t.Errorf("Delay(%d): no draw below a tenth of the ceiling in 500", n)
		}
	}
}
