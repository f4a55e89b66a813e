package ratelimit

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// OnError says what [WithFallback] does when the primary store fails.
type OnError string

const (
	OnErrorLocal OnError = "local" // decide with the local store (per-process limits)
	OnErrorDeny  OnError = "deny"  // refuse, Retry-After 1s (fail closed)
	OnErrorAllow OnError = "allow" // admit (fail open)
)

// fallbackHoldOff is how long WithFallback skips a primary store after it
// failed, so that a Redis that hangs costs one timeout per second, not one
// per request.
const fallbackHoldOff = time.Second

// WithFallback returns a Store that asks primary and, when primary fails,
// answers by mode: OnErrorLocal asks local, OnErrorDeny refuses with
// RetryAfter 1s, OnErrorAllow admits (Remaining is then unknown and reported
// as B−1, as for a full bucket). Any other mode, or OnErrorLocal with a nil
// local store, refuses as OnErrorDeny does.
//
// After a primary failure the primary is skipped for one second (of the now
// passed to Allow) and then tried again, so service recovers by itself when
// the primary is back. onFallback (may be nil) is called with the cause for
// every decision not taken by primary; the engine counts these in a metric.
// The returned Store reports an error only when local does.
func WithFallback(primary, local Store, mode OnError, onFallback func(err error)) Store {
	return &fallbackStore{primary: primary, local: local, mode: mode, onFallback: onFallback}
}

type fallbackStore struct {
	primary, local Store
	mode           OnError
	onFallback     func(err error)

	skipUntil atomic.Int64 // unix µs; primary is not asked before this
	lastErr   atomic.Value // error, boxed in errorBox
}

// errorBox lets atomic.Value hold errors of different concrete types.
type errorBox struct{ err error }

func (f *fallbackStore) Allow(ctx context.Context, key string, l Limit, now time.Time) (Result, error) {
	var cause error
	if now.UnixMicro() >= f.skipUntil.Load() {
		r, err := f.primary.Allow(ctx, key, l, now)
		if err == nil {
			return r, nil
		}
		cause = err
		f.lastErr.Store(errorBox{err})
		f.skipUntil.Store(now.Add(fallbackHoldOff).UnixMicro())
	} else {
		cause = fmt.Errorf("ratelimit: primary store skipped for %s after: %w", fallbackHoldOff, f.lastError())
	}
	if f.onFallback != nil {
		f.onFallback(cause)
	}
	switch {
	case f.mode == OnErrorLocal && f.local != nil:
		return f.local.Allow(ctx, key, l, now)
	case f.mode == OnErrorAllow:
		burst := l.BurstSize()
		return Result{Allowed: true, Limit: burst, Remaining: burst - 1}, nil
	default:
		return Result{Allowed: false, Limit: l.BurstSize(), RetryAfter: time.Second}, nil
	}
}

func (f *fallbackStore) lastError() error {
	box, _ := f.lastErr.Load().(errorBox)
	return box.err
}
