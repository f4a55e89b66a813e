// Package backoff computes retry delays: exponential backoff with full
// jitter, shared by the job queue and webhook delivery so both retry the
// same documented way.
package backoff

import (
	"math/rand/v2"
	"time"
)

// FullJitter is exponential backoff with "full jitter" (M. Brooker, "Exponential
// Backoff And Jitter", AWS Architecture Blog, 2015). The wait before retry n,
// counted from 1, is drawn uniformly from [0, Ceiling(n)] where
//
//	Ceiling(n) = min(Cap, Base·2^(n−1))
//
// so the first retry comes within Base, and retries of many failures that
// happened together spread out instead of arriving together.
type FullJitter struct {
	Base time.Duration // ceiling of the first retry; must be > 0
	Cap  time.Duration // largest ceiling; must be >= Base
	// Rand returns an integer uniform in [0, n]; nil means math/rand/v2.
	// Tests pass a fixed one.
	Rand func(n int64) int64
}

// Ceiling returns min(Cap, Base·2^(n−1)); n below 1 counts as 1.
func (b FullJitter) Ceiling(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	c := b.Base
	for i := 1; i < n && c < b.Cap; i++ {
		c <<= 1
	}
	if c > b.Cap || c <= 0 {
		c = b.Cap
	}
	return c
}

// Delay returns the wait before retry n (1-based).
func (b FullJitter) Delay(n int) time.Duration {
	c := int64(b.Ceiling(n))
	if b.Rand != nil {
		return time.Duration(b.Rand(c))
	}
	return time.Duration(rand.Int64N(c + 1))
}
