package ratelimit_test

import (
	"context"
	"errors"
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
