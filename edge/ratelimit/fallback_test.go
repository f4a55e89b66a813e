package ratelimit_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge/ratelimit"
)

// switchable is a primary store that can be made to fail: a stand-in for a
// remote store (the Redis store's tests repeat these cases with a real Redis).
type switchable struct {
	down  bool
	calls int
	inner *ratelimit.Memory
}

func (s *switchable) Allow(ctx context.Context, key string, l ratelimit.Limit, now time.Time) (ratelimit.Result, error) {
	s.calls++
	if s.down {
		return ratelimit.Result{}, errors.New("connection refused")
	}
	return s.inner.Allow(ctx, key, l, now)
}

func TestWithFallback(t *testing.T) {
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 2, Per: time.Hour}
	for _, mode := range []ratelimit.OnError{ratelimit.OnErrorLocal, ratelimit.OnErrorDeny, ratelimit.OnErrorAllow, "bogus"} {
		primary := &switchable{inner: ratelimit.NewMemory(ratelimit.MemoryOptions{})}
		local := ratelimit.NewMemory(ratelimit.MemoryOptions{})
		var causes []error
		s := ratelimit.WithFallback(primary, local, mode, func(err error) { causes = append(causes, err) })

		// Up: the primary decides, the local store is untouched.
		if r, err := s.Allow(ctx, "k", l, t0); err != nil || !r.Allowed || r.Remaining != 1 {
			t.Fatalf("%s up: %+v %v", mode, r, err)
		}
		if local.Len() != 0 || len(causes) != 0 {
			t.Fatalf("%s up: fallback used", mode)
		}

		// Down: three decisions by mode, each reported; the primary is asked
		// once and then skipped for a second.
		primary.down = true
		var got []ratelimit.Result
		for i := 0; i < 3; i++ {
			r, err := s.Allow(ctx, "k", l, t0.Add(time.Duration(i)*time.Millisecond))
			if err != nil {
				t.Fatalf("%s down: %v", mode, err)
			}
			got = append(got, r)
		}
		if len(causes) != 3 || primary.calls != 2 {
			t.Fatalf("%s down: %d fallbacks reported, primary asked %d times", mode, len(causes), primary.calls)
		}
		if causes[0].Error() != "connection refused" || causes[1] == nil {
			t.Fatalf("%s down: causes %v", mode, causes)
		}
		switch mode {
		case ratelimit.OnErrorLocal:
			if !got[0].Allowed || !got[1].Allowed || got[2].Allowed || local.Len() != 1 {
				t.Fatalf("local: %+v", got)
			}
		case ratelimit.OnErrorAllow:
			for _, r := range got {
				if !r.Allowed || r.Limit != 2 || r.Remaining != 1 {
					t.Fatalf("allow: %+v", got)
				}
			}
		default:
			for _, r := range got {
				if r.Allowed || r.RetryAfter != time.Second || r.Limit != 2 {
					t.Fatalf("%s: %+v", mode, got)
				}
			}
		}

		// Back up: after the hold-off the primary decides again.
		primary.down = false
		r, err := s.Allow(ctx, "k", l, t0.Add(2*time.Second))
		if err != nil || !r.Allowed || r.Remaining != 0 || len(causes) != 3 {
			t.Fatalf("%s recovered: %+v %v, %d fallbacks", mode, r, err, len(causes))
		}
	}
}

// OnErrorLocal without a local store fails closed instead of panicking.
func TestWithFallbackNilLocal(t *testing.T) {
	primary := &switchable{down: true}
	s := ratelimit.WithFallback(primary, nil, ratelimit.OnErrorLocal, nil)
	r, err := s.Allow(context.Background(), "k", ratelimit.Limit{Rate: 1, Per: time.Second}, t0)
	if err != nil || r.Allowed || r.RetryAfter != time.Second {
		t.Fatalf("%+v %v, want a refusal", r, err)
	}
}

// gated is a primary store whose calls wait for the test: each call hands
// the test a channel on which it waits for its answer (nil error: the inner
// store decides), like a Redis that hangs until it fails or resumes.
type gated struct {
	inner *ratelimit.Memory
	calls chan chan error // one per call that reached the store
}

func newGated() *gated {
	return &gated{inner: ratelimit.NewMemory(ratelimit.MemoryOptions{}), calls: make(chan chan error, 100)}
}

func (g *gated) Allow(ctx context.Context, key string, l ratelimit.Limit, now time.Time) (ratelimit.Result, error) {
	answer := make(chan error, 1)
	g.calls <- answer
	select {
	case err := <-answer:
		if err != nil {
			return ratelimit.Result{}, err
		}
		return g.inner.Allow(ctx, key, l, now)
	case <-ctx.Done():
		return ratelimit.Result{}, ctx.Err()
	}
}

// noCall fails the test if a call reached g.
func (g *gated) noCall(t *testing.T, what string) {
	t.Helper()
	select {
	case <-g.calls:
		t.Fatal(what)
	default:
	}
}

// TestWithFallbackSwitchesOnceForEveryone: calls that were waiting on a hung
// primary fall back as each fails, the first failure switches the store down
// for every later request (which then never waits), one request at a time
// probes after ProbeInterval, and a successful probe switches it up again.
func TestWithFallbackSwitchesOnceForEveryone(t *testing.T) {
	l := ratelimit.Limit{Rate: 1000, Per: time.Second}
	g := newGated()
	var fallbacks atomic.Int64
	s := ratelimit.WithFallback(g, nil, ratelimit.OnErrorDeny, func(error) { fallbacks.Add(1) })
	type answer struct {
		r   ratelimit.Result
		err error
	}
	call := func(ctx context.Context, now time.Time, out chan<- answer) {
		r, err := s.Allow(ctx, "k", l, now)
		out <- answer{r, err}
	}

	// Five requests wait on the primary while it is up.
	waiting := make(chan answer, 5)
	var held []chan error
	for i := 0; i < 5; i++ {
		go call(context.Background(), t0, waiting)
		held = append(held, <-g.calls)
	}
	// A caller that gives up is not the primary's failure: no switch.
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan answer, 1)
	go call(ctx, t0, gaveUp)
	<-g.calls
	cancel()
	if a := <-gaveUp; a.r.Allowed || !a.r.StoreDown {
		t.Fatalf("the cancelled call: %+v", a)
	}
	next := make(chan answer, 1)
	go call(context.Background(), t0, next)
	(<-g.calls) <- nil
	if a := <-next; !a.r.Allowed || a.r.StoreDown {
		t.Fatalf("after a cancelled call the primary must still decide: %+v", a)
	}
	// The primary fails the first waiting call: from then on nobody asks it.
	held[0] <- errors.New("i/o timeout")
	if a := <-waiting; a.err != nil || a.r.Allowed || !a.r.StoreDown || a.r.RetryAfter != time.Second {
		t.Fatalf("the failed call: %+v", a)
	}
	for i := 0; i < 50; i++ {
		if r, err := s.Allow(context.Background(), "k", l, t0.Add(time.Millisecond)); err != nil || r.Allowed || !r.StoreDown {
			t.Fatalf("while down: %+v %v", r, err)
		}
	}
	g.noCall(t, "a request asked the primary while it was down")
	// The four others that were already waiting fail late; they fall back
	// and switch nothing.
	for _, h := range held[1:] {
		h <- errors.New("i/o timeout")
		<-waiting
	}

	// After ProbeInterval exactly one of twenty concurrent requests probes;
	// the other nineteen answer without waiting for it.
	probeAt := t0.Add(ratelimit.ProbeInterval)
	results := make(chan answer, 20)
	for i := 0; i < 20; i++ {
		go call(context.Background(), probeAt, results)
	}
	probe := <-g.calls
	for i := 0; i < 19; i++ {
		if a := <-results; a.r.Allowed || !a.r.StoreDown {
			t.Fatalf("a request beside the probe: %+v", a)
		}
	}
	g.noCall(t, "a second probe ran while one was in flight")
	// The probe succeeds: it is decided by the primary, and so is the next.
	probe <- nil
	if a := <-results; a.err != nil || !a.r.Allowed || a.r.StoreDown {
		t.Fatalf("the probe: %+v", a)
	}
	go call(context.Background(), probeAt, next)
	(<-g.calls) <- nil
	if a := <-next; !a.r.Allowed || a.r.StoreDown {
		t.Fatalf("after recovery: %+v", a)
	}
	if got, want := fallbacks.Load(), int64(1+1+50+4+19); got != want {
		t.Fatalf("%d fallbacks reported, want %d", got, want)
	}
}

// A call that started before a recovery and fails after it does not switch
// the primary down again.
func TestWithFallbackLateFailureAfterRecovery(t *testing.T) {
	l := ratelimit.Limit{Rate: 1000, Per: time.Second}
	g := newGated()
	s := ratelimit.WithFallback(g, nil, ratelimit.OnErrorAllow, nil)
	decide := func(now time.Time) (chan error, chan ratelimit.Result) {
		out := make(chan ratelimit.Result, 1)
		go func() {
			r, _ := s.Allow(context.Background(), "k", l, now)
			out <- r
		}()
		return <-g.calls, out
	}
	first, firstOut := decide(t0)
	late, lateOut := decide(t0)
	first <- errors.New("i/o timeout") // switches down
	if r := <-firstOut; !r.Allowed || !r.StoreDown || r.Remaining != 999 {
		t.Fatalf("allow while down: %+v", r)
	}
	probe, probeOut := decide(t0.Add(ratelimit.ProbeInterval))
	probe <- nil // the probe succeeds: up
	if r := <-probeOut; r.StoreDown {
		t.Fatalf("probe: %+v", r)
	}
	late <- errors.New("i/o timeout") // the old call fails only now
	<-lateOut
	after, afterOut := decide(t0.Add(ratelimit.ProbeInterval)) // still up: the primary is asked
	after <- nil
	if r := <-afterOut; r.StoreDown {
		t.Fatalf("a late failure switched the store down again: %+v", r)
	}
}
