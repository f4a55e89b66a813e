package ratelimit_test

import (
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge/ratelimit"
)

// FuzzGCRA feeds GCRA random limits and request times and checks it against
// an independent model (a token bucket counting credit in microseconds) and
// against GCRA's defining bound: in any stretch of time Δ, at most
// B + Δ/T requests are admitted.
//
// steps holds two bytes per request: the gap since the previous request, in
// units of T/64 (so gaps from 0 to ~1000·T occur). A gap with its top bit set
// moves the clock backwards instead (gateways' clocks are not monotonic);
// the model is then not applied, only the invariants.
func FuzzGCRA(f *testing.F) {
	f.Add(uint32(3), uint32(3_600_000), uint32(3), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0})
	f.Add(uint32(600), uint32(60_000), uint32(0), []byte{1, 0, 1, 0, 64, 0, 0, 0, 0, 128})
	f.Add(uint32(100), uint32(60_000), uint32(20), []byte{0, 0, 0, 0, 255, 255, 0, 1})
	f.Add(uint32(1), uint32(1), uint32(1), []byte{0, 0, 1, 0, 2, 0})
	f.Add(uint32(0), uint32(0), uint32(0), []byte{0, 0})
	f.Fuzz(func(t *testing.T, rate, perMillis, burst uint32, steps []byte) {
		l := ratelimit.Limit{Rate: int(rate), Per: time.Duration(perMillis) * time.Millisecond, Burst: int(burst)}
		if len(steps) > 512 {
			steps = steps[:512]
		}
		if l.Validate() != nil {
			_, r := ratelimit.GCRA(time.Time{}, t0, l)
			if r.Allowed || r.RetryAfter <= 0 {
				t.Fatalf("invalid %+v: %+v", l, r)
			}
			return
		}
		T := l.Interval()
		B := l.BurstSize()
		unit := (T / 64).Truncate(time.Microsecond) // GCRA works in whole µs
		if unit < time.Microsecond {
			unit = time.Microsecond
		}
		var (
			tat      time.Time
			now      = t0
			credit   = time.Duration(B) * T // the model: capacity in µs, full
			monotone = true
			admitted []time.Time
		)
		for i := 0; i+1 < len(steps); i += 2 {
			gap := int(steps[i]) | int(steps[i+1]&0x7f)<<8
			prev := now
			if steps[i+1]&0x80 != 0 {
				now = now.Add(-time.Duration(gap) * unit)
				monotone = false
			} else {
				now = now.Add(time.Duration(gap) * unit)
			}
			var r ratelimit.Result
			tat, r = ratelimit.GCRA(tat, now, l)

			if r.Limit != B || r.Remaining < 0 || r.Remaining > B || r.Reset < 0 || r.Reset > time.Duration(B)*T {
				t.Fatalf("request %d at %s: out of range %+v (B %d T %s)", i/2, now, r, B, T)
			}
			if r.Allowed != (r.RetryAfter == 0) || r.RetryAfter < 0 || r.RetryAfter > T {
				t.Fatalf("request %d: RetryAfter inconsistent %+v", i/2, r)
			}
			if !r.Allowed {
				// Exactly RetryAfter later the same request fits, a microsecond
				// earlier it does not.
				if _, again := ratelimit.GCRA(tat, now.Add(r.RetryAfter), l); !again.Allowed {
					t.Fatalf("request %d: refused again after RetryAfter %s", i/2, r.RetryAfter)
				}
				if _, early := ratelimit.GCRA(tat, now.Add(r.RetryAfter-time.Microsecond), l); early.Allowed {
					t.Fatalf("request %d: admitted before RetryAfter %s", i/2, r.RetryAfter)
				}
			}
			if !monotone {
				continue
			}
			credit += now.Sub(prev)
			if full := time.Duration(B) * T; credit > full {
				credit = full
			}
			want := ratelimit.Result{Limit: B}
			if credit >= T {
				credit -= T
				want.Allowed = true
				want.Remaining = int(credit / T)
				want.Reset = time.Duration(B)*T - credit
			} else {
				want.Reset = time.Duration(B)*T - credit
				want.RetryAfter = T - credit
			}
			if r != want {
				t.Fatalf("request %d at +%s: GCRA %+v, token bucket %+v", i/2, now.Sub(t0), r, want)
			}
			if r.Allowed {
				admitted = append(admitted, now)
			}
		}
		// Any window [admitted[i], admitted[j]] holds at most B + Δ/T admissions.
		for i := 0; i < len(admitted); i++ {
			for j := i; j < len(admitted); j++ {
				limit := B + int(admitted[j].Sub(admitted[i])/T)
				if j-i+1 > limit {
					t.Fatalf("admitted %d in %s, bound %d", j-i+1, admitted[j].Sub(admitted[i]), limit)
				}
			}
		}
	})
}
