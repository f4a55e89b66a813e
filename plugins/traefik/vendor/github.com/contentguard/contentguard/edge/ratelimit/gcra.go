// Package ratelimit decides whether a request fits its rate limit, using GCRA
// (the generic cell rate algorithm: a token bucket with burst, kept as one
// timestamp per key), and renders the decision as HTTP headers.
//
// The package holds the maths ([GCRA]), an in-process [Store] ([Memory]), a
// [WithFallback] wrapper for remote stores (the Redis store lives in the
// native-only sub-package redisstore and runs the same maths in one Lua
// script), header rendering ([Headers]) and client-address keys ([IPKey]).
//
// It imports only the standard library and avoids generics and newer builtins
// because the Traefik plugin runs it under the Yaegi interpreter.
//
// # The maths
//
// A [Limit] of Rate requests per Per with bucket size Burst (B) defines the
// emission interval
//
//	T = Per / Rate
//
// the time one request's worth of capacity takes to refill. Instead of a
// token count, GCRA stores for each key one instant, the theoretical arrival
// time TAT: the moment the bucket would be full again if no more requests
// came. An idle key's TAT lies in the past; a bucket cannot hold more than
// B, so the effective TAT is max(TAT, now). A request costs T:
//
//	newTAT = max(TAT, now) + T
//
// The bucket can absorb B requests at once, i.e. newTAT may run ahead of now
// by at most B·T. Written with the classic delay-variation tolerance
// τ = T·(B−1) (how far ahead of its schedule a request may arrive), a request
// is admitted iff
//
//	newTAT − now ≤ τ + T = B·T
//
// in which case TAT becomes newTAT; a refused request changes nothing. From
// the same numbers:
//
//	Remaining  = ⌊(now + B·T − newTAT) / T⌋   requests still admissible now (0 … B−1)
//	Reset      = newTAT − now                  until the bucket is full again
//	RetryAfter = (newTAT − B·T) − now          when refused: until the request would fit
//
// Example: {Rate: 3, Per: time.Hour, Burst: 3} gives T = 20m and B·T = 1h.
// Three requests at 12:00 move TAT to 12:20, 12:40, 13:00 (Remaining 2, 1, 0).
// A fourth at 12:00 would need newTAT = 13:20, 1h20m ahead of now: refused,
// RetryAfter = 13:20 − 1h − 12:00 = 20m. At 12:20 newTAT = 13:20 is exactly
// B·T ahead: admitted — one more request every twenty minutes.
//
// All arithmetic is done in whole microseconds of int64. The Redis script
// repeats it in Lua, whose numbers are float64 and exact only up to 2^53:
// microseconds since 1970 plus at most 100 years of bucket stay far below that,
// so both stores compute identical results. T is Per/Rate truncated to a whole
// microsecond, which makes the real rate a hair faster than asked for Per/Rate
// that do not divide evenly (3 per hour: T = 1_200_000_000µs exactly; 7 per
// hour: T = 514_285_714µs, 0.0000001% fast).
package ratelimit

import (
	"errors"
	"fmt"
	"time"
)

// Limit is a rate limit: Rate requests per Per, with a bucket of Burst
// requests (the most admitted at once). Burst 0 means Burst = Rate.
type Limit struct {
	Rate  int
	Per   time.Duration
	Burst int
}

// maxBucketMicros bounds B·T, the time a bucket takes to refill completely, to
// 100 years. It keeps every sum in GCRA (microseconds since 1970 plus B·T)
// below 2^53, where the Lua script's float64 numbers are still exact integers.
const maxBucketMicros = int64(100 * 365.25 * 24 * 3600 * 1e6)

// Validate reports why l cannot be used, or nil.
func (l Limit) Validate() error {
	_, _, problem := limitMicros(l.Rate, l.Per, l.Burst)
	if problem != "" {
		return fmt.Errorf("rate %d per %s burst %d: %s", l.Rate, l.Per, l.Burst, problem)
	}
	return nil
}

// limitMicros is T and B in microseconds for a limit, or what is wrong with
// it. It takes the fields one by one, not a Limit: Yaegi passes scalars much
// more cheaply than structs, and this runs for every request.
func limitMicros(rate int, per time.Duration, burst int) (interval, b int64, problem string) {
	if rate < 1 {
		return 0, 0, "rate must be at least 1"
	}
	if per < time.Microsecond {
		return 0, 0, "per must be at least 1µs"
	}
	if burst < 0 {
		return 0, 0, "burst must not be negative"
	}
	perMicros := int64(per / time.Microsecond)
	if perMicros < int64(rate) {
		return 0, 0, "more than one request per microsecond"
	}
	interval = perMicros / int64(rate)
	b = int64(burst)
	if b == 0 {
		b = int64(rate)
	}
	if b > maxBucketMicros/interval {
		return 0, 0, "the bucket would take more than 100 years to refill (burst × per/rate)"
	}
	return interval, b, ""
}

// BurstSize is the bucket size B: Burst, or Rate when Burst is 0.
func (l Limit) BurstSize() int {
	if l.Burst == 0 {
		return l.Rate
	}
	return l.Burst
}

// Interval is the emission interval T = Per/Rate, truncated to a whole
// microsecond (0 for a limit that does not validate).
func (l Limit) Interval() time.Duration {
	interval, _, problem := limitMicros(l.Rate, l.Per, l.Burst)
	if problem != "" {
		return 0
	}
	return time.Duration(interval) * time.Microsecond
}

// Result is one rate-limit decision.
type Result struct {
	Allowed    bool
	Limit      int           // the bucket size B (RateLimit-Limit)
	Remaining  int           // requests admissible right now after this one
	Reset      time.Duration // until the bucket is full again (RateLimit-Reset)
	RetryAfter time.Duration // > 0 only when !Allowed: until a request would be admitted
	// StoreDown marks a decision no bucket took: the shared store was
	// unavailable and [WithFallback]'s OnErrorDeny refused (or OnErrorAllow
	// admitted) without evaluating the limit.
	StoreDown bool
}

// denyInvalid is the answer for a limit that does not validate: refuse (fail
// closed) and suggest a retry in a second.
var denyInvalid = Result{Allowed: false, RetryAfter: time.Second}

// GCRA decides one request at now for a key whose theoretical arrival time is
// tat (the zero Time for a key never seen), and returns the key's new TAT with
// the decision. It is a pure function: stores keep newTAT for the key.
// Times are truncated to microseconds (see the package comment).
//
// Bad input is refused (fail closed) with RetryAfter 1s and tat returned as
// is: a limit that does not validate, or a now outside 1970…2155 (where the
// microsecond sums would leave float64's exact range; no real clock is there).
func GCRA(tat, now time.Time, l Limit) (newTAT time.Time, r Result) {
	interval, burst, problem := limitMicros(l.Rate, l.Per, l.Burst)
	nowMicros := now.UnixMicro()
	if problem != "" || nowMicros < 0 || nowMicros > maxNowMicros {
		return tat, denyInvalid
	}
	tatMicros := nowMicros // a new key behaves like an idle one: full bucket
	if !tat.IsZero() {
		tatMicros = tat.UnixMicro()
	}
	next, r := gcraMicros(tatMicros, nowMicros, interval, burst)
	return time.UnixMicro(next), r
}

// badInput explains why limitMicros or the range of now refused a decision.
func badInput(l Limit, now time.Time, problem string) error {
	if problem != "" {
		return fmt.Errorf("ratelimit: limit: %w", l.Validate())
	}
	return errors.New("ratelimit: now " + now.UTC().Format(time.RFC3339) + " is outside 1970…2155")
}

// maxNowMicros is the latest now GCRA accepts: now + B·T must stay below 2^53.
const maxNowMicros = 1<<53 - maxBucketMicros - 1

// gcraMicros is GCRA on microseconds: tat and now since 1970 (now within
// 0…maxNowMicros), interval T and burst B from a valid Limit.
func gcraMicros(tat, now, interval, burst int64) (int64, Result) {
	r := Result{Limit: int(burst)}
	if tat < now {
		tat = now // an idle bucket is full; capacity does not pile up beyond B
	}
	if tat > now+burst*interval {
		// Further ahead than an empty bucket: the limit shrank since tat was
		// stored (or the store holds garbage). Count it as an empty bucket.
		tat = now + burst*interval
	}
	newTAT := tat + interval
	allowAt := newTAT - burst*interval // the earliest now at which newTAT − now ≤ B·T
	if now < allowAt {
		r.Reset = time.Duration(tat-now) * time.Microsecond
		r.RetryAfter = time.Duration(allowAt-now) * time.Microsecond
		return tat, r
	}
	r.Allowed = true
	r.Remaining = int((now + burst*interval - newTAT) / interval)
	r.Reset = time.Duration(newTAT-now) * time.Microsecond
	return newTAT, r
}
