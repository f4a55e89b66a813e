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

// ProbeInterval is how long [WithFallback] decides without a primary store
// that failed before it lets one request try the primary again.
const ProbeInterval = time.Second

// WithFallback returns a Store that asks primary and, when primary fails,
// answers by mode: OnErrorLocal asks local, OnErrorDeny refuses with
// RetryAfter 1s, OnErrorAllow admits (Remaining is then unknown and reported
// as B−1, as for a full bucket); the last two set Result.StoreDown. Any other
// mode, or OnErrorLocal with a nil local store, refuses as OnErrorDeny does.
//
// The switch is shared by every request at once. The first failure of a call
// started while the primary was up turns it down (a compare-and-swap on the
// store's state, so one failure switches once however many calls fail
// together), and from then on no request waits for the primary: each is
// decided by mode at once. Every ProbeInterval (of the now passed to Allow)
// one request — the one that wins a second compare-and-swap — probes the
// primary with its own decision, while the others keep falling back; when
// the probe succeeds the primary is up again for everyone. So a primary that
// hangs (answers nothing, fails nothing) costs each request at most one of
// the primary's own timeouts, and afterwards one request per ProbeInterval:
// bound the primary's calls (redisstore.Options.Timeout) to bound that cost.
//
// A call that fails because its own ctx ended (the client went away) says
// nothing about the primary and switches nothing. onFallback (may be nil) is
// called with the cause for every decision not taken by primary; the engine
// counts these in a metric. The returned Store reports an error only when
// local does.
func WithFallback(primary, local Store, mode OnError, onFallback func(err error)) Store {
	return &fallbackStore{primary: primary, local: local, mode: mode, onFallback: onFallback}
}

type fallbackStore struct {
	primary, local Store
	mode           OnError
	onFallback     func(err error)

	// state counts switches: even while the primary is up, odd while it is
	// down. A call remembers the state it started in, so a call that began
	// before a recovery cannot switch the primary down again by failing late.
	state     atomic.Uint64
	probing   atomic.Bool  // a probe call is in flight
	nextProbe atomic.Int64 // unix µs: no probe starts before this
	lastErr   atomic.Value // error, boxed in errorBox: why the primary is down
}

// errorBox lets atomic.Value hold errors of different concrete types.
type errorBox struct{ err error }

func (f *fallbackStore) Allow(ctx context.Context, key string, l Limit, now time.Time) (Result, error) {
	state := f.state.Load()
	if state%2 == 0 {
		r, err := f.primary.Allow(ctx, key, l, now)
		if err == nil {
			return r, nil
		}
		f.failed(ctx, state, err, now)
		return f.fallback(ctx, key, l, now, err)
	}
	if now.UnixMicro() < f.nextProbe.Load() || !f.probing.CompareAndSwap(false, true) {
		return f.fallback(ctx, key, l, now, f.skipped())
	}
	// This request probes. A recovery switches the primary up for everyone;
	// a failure puts the next probe one interval away.
	r, err := f.primary.Allow(ctx, key, l, now)
	if err == nil {
		f.state.CompareAndSwap(state, state+1)
		f.probing.Store(false)
		return r, nil
	}
	if ctx.Err() == nil {
		f.lastErr.Store(errorBox{err})
		f.nextProbe.Store(now.Add(ProbeInterval).UnixMicro())
	}
	f.probing.Store(false)
	return f.fallback(ctx, key, l, now, err)
}

// failed switches the primary down after a call that started in state (up)
// failed, unless the call's own context ended or another failure already
// switched it.
func (f *fallbackStore) failed(ctx context.Context, state uint64, err error, now time.Time) {
	if ctx.Err() != nil {
		return
	}
	if f.state.CompareAndSwap(state, state+1) {
		f.lastErr.Store(errorBox{err})
		f.nextProbe.Store(now.Add(ProbeInterval).UnixMicro())
	}
}

// skipped is the cause reported for a decision that did not ask the primary.
func (f *fallbackStore) skipped() error {
	box, _ := f.lastErr.Load().(errorBox)
	return fmt.Errorf("ratelimit: primary store down (probed every %s) after: %w", ProbeInterval, box.err)
}

// fallback decides by mode without the primary.
func (f *fallbackStore) fallback(ctx context.Context, key string, l Limit, now time.Time, cause error) (Result, error) {
	if f.onFallback != nil {
		f.onFallback(cause)
	}
	switch {
	case f.mode == OnErrorLocal && f.local != nil:
		return f.local.Allow(ctx, key, l, now)
	case f.mode == OnErrorAllow:
		burst := l.BurstSize()
		return Result{Allowed: true, Limit: burst, Remaining: burst - 1, StoreDown: true}, nil
	default:
		return Result{Allowed: false, Limit: l.BurstSize(), RetryAfter: time.Second, StoreDown: true}, nil
	}
}
