package ratelimit_test

import (
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge/ratelimit"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// The policy document's example: {rate: 3, per: 1h, burst: 3} admits three
// requests at once, refuses the fourth, and admits one more every twenty
// minutes.
func TestGCRAThreePerHour(t *testing.T) {
	l := ratelimit.Limit{Rate: 3, Per: time.Hour, Burst: 3}
	var tat time.Time
	step := func(at time.Duration, want ratelimit.Result) {
		t.Helper()
		var r ratelimit.Result
		tat, r = ratelimit.GCRA(tat, t0.Add(at), l)
		if r != want {
			t.Fatalf("at +%s: got %+v, want %+v", at, r, want)
		}
	}
	step(0, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 2, Reset: 20 * time.Minute})
	step(0, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 1, Reset: 40 * time.Minute})
	step(0, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 0, Reset: time.Hour})
	step(0, ratelimit.Result{Limit: 3, Reset: time.Hour, RetryAfter: 20 * time.Minute})
	step(19*time.Minute, ratelimit.Result{Limit: 3, Reset: 41 * time.Minute, RetryAfter: time.Minute})
	step(20*time.Minute, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 0, Reset: time.Hour})
	step(20*time.Minute, ratelimit.Result{Limit: 3, Reset: time.Hour, RetryAfter: 20 * time.Minute})
	step(40*time.Minute, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 0, Reset: time.Hour})
	// Idle for a day: the bucket is full again, no more than full.
	step(25*time.Hour, ratelimit.Result{Allowed: true, Limit: 3, Remaining: 2, Reset: 20 * time.Minute})
}

func TestGCRABurstDefaultsToRate(t *testing.T) {
	l := ratelimit.Limit{Rate: 600, Per: time.Minute}
	var tat time.Time
	for i := 0; i < 600; i++ {
		var r ratelimit.Result
		tat, r = ratelimit.GCRA(tat, t0, l)
		if !r.Allowed || r.Limit != 600 || r.Remaining != 599-i {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	_, r := ratelimit.GCRA(tat, t0, l)
	if r.Allowed || r.RetryAfter != 100*time.Millisecond {
		t.Fatalf("request 601: %+v, want refused with RetryAfter 100ms", r)
	}
}

// A burst smaller than the rate caps what can be spent at once; a larger one
// lets a quiet client save up.
func TestGCRABurstDiffersFromRate(t *testing.T) {
	l := ratelimit.Limit{Rate: 100, Per: time.Minute, Burst: 20} // T = 600ms
	var tat time.Time
	admitted := 0
	for i := 0; i < 100; i++ {
		var r ratelimit.Result
		tat, r = ratelimit.GCRA(tat, t0, l)
		if r.Allowed {
			admitted++
		}
	}
	if admitted != 20 {
		t.Fatalf("admitted %d at once, want the burst 20", admitted)
	}
	// Over the next minute 100 more arrive, one per 600ms.
	for i := 1; i <= 100; i++ {
		var r ratelimit.Result
		tat, r = ratelimit.GCRA(tat, t0.Add(time.Duration(i)*600*time.Millisecond), l)
		if !r.Allowed || r.Remaining != 0 {
			t.Fatalf("paced request %d: %+v", i, r)
		}
	}
}

func TestGCRARefusesBadInput(t *testing.T) {
	bad := []ratelimit.Limit{
		{},
		{Rate: 0, Per: time.Second},
		{Rate: -1, Per: time.Second},
		{Rate: 1, Per: 0},
		{Rate: 1, Per: -time.Second},
		{Rate: 1, Per: time.Second, Burst: -1},
		{Rate: 2_000_000, Per: time.Second},                      // faster than 1/µs
		{Rate: 1, Per: 200 * 365 * 24 * time.Hour},               // a bucket refilling over 200 years
		{Rate: 1, Per: time.Hour, Burst: 1 << 40},                // B·T overflow territory
		{Rate: 1 << 30, Per: 1 << 62, Burst: 1<<62 - 1 + 1<<62},  // overflowing everything
		{Rate: 1, Per: time.Duration(1<<63 - 1), Burst: 1 << 30}, // overflowing B·T
	}
	for _, l := range bad {
		if l.Validate() == nil {
			t.Errorf("%+v validated", l)
		}
		tat, r := ratelimit.GCRA(time.Time{}, t0, l)
		if r.Allowed || r.RetryAfter != time.Second || !tat.IsZero() {
			t.Errorf("%+v: got %+v tat %v, want refusal with RetryAfter 1s", l, r, tat)
		}
	}
	l := ratelimit.Limit{Rate: 1, Per: time.Second}
	for _, now := range []time.Time{{}, time.Unix(-1, 0), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, r := ratelimit.GCRA(time.Time{}, now, l); r.Allowed {
			t.Errorf("now %v: admitted", now)
		}
	}
}

// A stored TAT further ahead than the bucket allows (the limit shrank after a
// reload) counts as an empty bucket: refused, and admitted again after T.
func TestGCRALimitShrank(t *testing.T) {
	big := ratelimit.Limit{Rate: 100, Per: time.Second}
	small := ratelimit.Limit{Rate: 1, Per: time.Second}
	var tat time.Time
	for i := 0; i < 100; i++ {
		tat, _ = ratelimit.GCRA(tat, t0, big)
	}
	tat, r := ratelimit.GCRA(tat, t0, small)
	if r.Allowed || r.RetryAfter != time.Second || r.Reset != time.Second || r.Remaining != 0 {
		t.Fatalf("after shrink: %+v", r)
	}
	if _, r = ratelimit.GCRA(tat, t0.Add(time.Second), small); !r.Allowed {
		t.Fatalf("one interval after shrink: %+v", r)
	}
}

func TestLimitInterval(t *testing.T) {
	cases := []struct {
		l    ratelimit.Limit
		want time.Duration
	}{
		{ratelimit.Limit{Rate: 3, Per: time.Hour}, 20 * time.Minute},
		{ratelimit.Limit{Rate: 7, Per: time.Hour}, 514285714 * time.Microsecond},
		{ratelimit.Limit{Rate: 1_000_000, Per: time.Second}, time.Microsecond},
		{ratelimit.Limit{}, 0},
	}
	for _, c := range cases {
		if got := c.l.Interval(); got != c.want {
			t.Errorf("%+v: Interval %s, want %s", c.l, got, c.want)
		}
	}
}
