package redisstore

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/edge/ratelimit/internal/storetest"
	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/internal/redistest"
)

// redisServer is a real redis-server owned by a test, with a client maker.
type redisServer struct{ *redistest.Server }

// startRedis starts redis-server for tb and stops it at cleanup. A missing
// redis-server is a failure, not a skip.
func startRedis(tb testing.TB) redisServer { return redisServer{redistest.New(tb)} }

func (s redisServer) client(tb testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: s.Addr(),
		// A killed Redis refuses or resets at once; the timeouts only
		// bound a hung one, and must not fail a slow answer on a loaded
		// machine.
		DialTimeout:  5 * time.Second,
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
		MaxRetries:   -1, // fail fast: WithFallback decides what happens
	})
	tb.Cleanup(func() { c.Close() })
	return c
}

var ctx = context.Background()

// The script and the pure GCRA agree step by step: the TAT the script finds
// is the one GCRA computed the step before (or the key had expired because
// its bucket was full), and the in-process store fed Redis's clock answers
// the same.
func TestScriptMatchesGCRA(t *testing.T) {
	srv := startRedis(t)
	s := New(srv.client(t), Options{})
	mem := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	// T = 250ms, B·T = 750ms: the immediate repeats are refused even on a
	// slow machine, and the 800ms pause lets the key expire in Redis.
	l := ratelimit.Limit{Rate: 4, Per: time.Second, Burst: 3}
	pauses := []time.Duration{0, 0, 0, 0, 100, 200, 0, 0, 300, 0, 0, 0, 800, 0}
	var tat time.Time // GCRA's view of the key
	allowed, refused, expired := 0, 0, 0
	for i, p := range pauses {
		time.Sleep(p * time.Millisecond)
		d, err := s.decide(ctx, "seq", l)
		if err != nil {
			t.Fatal(err)
		}
		now := time.UnixMicro(d.now)
		switch {
		case d.found != 0 && (tat.IsZero() || d.found != tat.UnixMicro()):
			t.Fatalf("step %d: script found TAT %d, GCRA left %v", i, d.found, tat)
		case d.found == 0 && !tat.IsZero() && tat.After(now):
			t.Fatalf("step %d: key gone while its TAT %v is ahead of now %v", i, tat, now)
		case d.found == 0 && !tat.IsZero():
			expired++
		}
		var want ratelimit.Result
		tat, want = ratelimit.GCRA(tat, now, l)
		if d.result != want {
			t.Fatalf("step %d: redis %+v, GCRA %+v", i, d.result, want)
		}
		got, err := mem.Allow(ctx, "seq", l, now)
		if err != nil || got != want {
			t.Fatalf("step %d: memory %+v %v, GCRA %+v", i, got, err, want)
		}
		if want.Allowed {
			allowed++
		} else {
			refused++
		}
	}
	if allowed == 0 || refused == 0 || expired == 0 {
		t.Fatalf("the sequence should admit, refuse and see the key expire: %d admitted, %d refused, %d expired", allowed, refused, expired)
	}
}

// Five per 5s with burst 5 admits five at once, refuses the sixth, and
// admits again after RetryAfter. Redis's clock (TIME) is real time, which
// no test can hold still: T = 1s leaves a loaded machine a whole second
// for the six requests that must fall within one interval.
func TestRefillInRealTime(t *testing.T) {
	srv := startRedis(t)
	s := New(srv.client(t), Options{})
	l := ratelimit.Limit{Rate: 5, Per: 5 * time.Second}
	for i := 0; i < 5; i++ {
		r, err := s.Allow(ctx, "k", l, time.Time{})
		if err != nil || !r.Allowed || r.Limit != 5 {
			t.Fatalf("request %d: %+v %v", i, r, err)
		}
	}
	r, err := s.Allow(ctx, "k", l, time.Time{})
	if err != nil || r.Allowed || r.RetryAfter <= 0 || r.RetryAfter > time.Second || r.Remaining != 0 {
		t.Fatalf("request 6: %+v %v, want refused with RetryAfter ≤ 1s", r, err)
	}
	time.Sleep(r.RetryAfter) // real time must pass for the bucket to refill
	if r, err = s.Allow(ctx, "k", l, time.Time{}); err != nil || !r.Allowed {
		t.Fatalf("after RetryAfter: %+v %v", r, err)
	}
}

// Two stores with their own connections — two gateways — share one budget,
// whatever clocks they pass in.
func TestTwoGatewaysShareOneBudget(t *testing.T) {
	srv := startRedis(t)
	a := New(srv.client(t), Options{})
	b := New(srv.client(t), Options{})
	l := ratelimit.Limit{Rate: 4, Per: time.Hour}
	skewed := []time.Time{time.Now().Add(-time.Hour), time.Now().Add(time.Hour)}
	for i := 0; i < 6; i++ {
		g := a
		if i%2 == 1 {
			g = b
		}
		r, err := g.Allow(ctx, "shared", l, skewed[i%2])
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed != (i < 4) || (r.Allowed && r.Remaining != 3-i) {
			t.Fatalf("request %d via gateway %d: %+v", i, i%2, r)
		}
	}
}

// 50 goroutines race for one bucket across a connection pool: exactly the
// burst is admitted.
func TestConcurrentAdmitsExactlyBurst(t *testing.T) {
	srv := startRedis(t)
	s := New(srv.client(t), Options{})
	l := ratelimit.Limit{Rate: 1, Per: 24 * time.Hour, Burst: 123}
	admitted := storetest.AdmitConcurrently(t, s, "race", l, time.Time{}, 50, 10)
	if admitted != 123 {
		t.Fatalf("admitted %d, want the burst 123", admitted)
	}
}

// Keys live under the prefix and expire when their bucket is full again.
func TestKeyPrefixAndExpiry(t *testing.T) {
	srv := startRedis(t)
	c := srv.client(t)
	l := ratelimit.Limit{Rate: 2, Per: time.Minute} // T = 30s
	if _, err := New(c, Options{}).Allow(ctx, "ip:203.0.113.7", l, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ttl, err := c.PTTL(ctx, "cg:rl:ip:203.0.113.7").Result()
	if err != nil || ttl <= 29*time.Second || ttl > 30*time.Second {
		t.Fatalf("PTTL after one request: %s %v, want ≈ T = 30s", ttl, err)
	}
	if _, err := New(c, Options{Prefix: "other:"}).Allow(ctx, "k", l, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Exists(ctx, "other:k").Result(); err != nil || n != 1 {
		t.Fatalf("custom prefix: exists=%d %v", n, err)
	}
	// A bucket that takes 50 years to refill: TAT and expiry are written as
	// plain integers (no float exponent notation) and read back exactly.
	long := ratelimit.Limit{Rate: 1, Per: 50 * 365 * 24 * time.Hour}
	s50 := New(c, Options{})
	if r, err := s50.Allow(ctx, "long", long, time.Time{}); err != nil || !r.Allowed {
		t.Fatalf("50-year limit: %+v %v", r, err)
	}
	if ttl, err := c.PTTL(ctx, "cg:rl:long").Result(); err != nil || ttl < long.Per-time.Minute || ttl > long.Per {
		t.Fatalf("50-year limit: PTTL %s %v, want ≈ %s", ttl, err, long.Per)
	}
	if r, err := s50.Allow(ctx, "long", long, time.Time{}); err != nil || r.Allowed || r.RetryAfter < long.Per-time.Minute {
		t.Fatalf("50-year limit, second request: %+v %v", r, err)
	}

	// A refused request does not extend the expiry.
	s := New(c, Options{})
	for i := 0; i < 3; i++ {
		if _, err := s.Allow(ctx, "full", ratelimit.Limit{Rate: 1, Per: time.Minute}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if ttl, err := c.PTTL(ctx, "cg:rl:full").Result(); err != nil || ttl > time.Minute {
		t.Fatalf("PTTL after refusals: %s %v, want ≤ 1m", ttl, err)
	}
}

// After SCRIPT FLUSH (or a Redis restart) EVALSHA fails with NOSCRIPT and
// the store falls back to EVAL.
func TestScriptReloadedAfterFlush(t *testing.T) {
	srv := startRedis(t)
	c := srv.client(t)
	s := New(c, Options{})
	l := ratelimit.Limit{Rate: 10, Per: time.Minute}
	if _, err := s.Allow(ctx, "k", l, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Allow(ctx, "k", l, time.Time{})
	if err != nil || !r.Allowed || r.Remaining != 8 {
		t.Fatalf("after SCRIPT FLUSH: %+v %v", r, err)
	}
}

func TestBadLimit(t *testing.T) {
	srv := startRedis(t)
	r, err := New(srv.client(t), Options{}).Allow(ctx, "k", ratelimit.Limit{}, time.Time{})
	if err == nil || r.Allowed {
		t.Fatalf("zero limit: %+v %v", r, err)
	}
}

// Redis killed: Allow fails, and WithFallback answers per mode, reporting
// each fallback; Redis back: decisions come from Redis again.
func TestRedisDownAndBack(t *testing.T) {
	srv := startRedis(t)
	l := ratelimit.Limit{Rate: 2, Per: time.Hour}
	for _, mode := range []ratelimit.OnError{ratelimit.OnErrorLocal, ratelimit.OnErrorDeny, ratelimit.OnErrorAllow} {
		t.Run(string(mode), func(t *testing.T) {
			c := srv.client(t)
			primary := New(c, Options{Prefix: "down:" + string(mode) + ":"})
			local := ratelimit.NewMemory(ratelimit.MemoryOptions{})
			var fallbacks []error
			s := ratelimit.WithFallback(primary, local, mode, func(err error) { fallbacks = append(fallbacks, err) })
			now := time.Now()

			if r, err := s.Allow(ctx, "k", l, now); err != nil || !r.Allowed || r.Remaining != 1 || len(fallbacks) != 0 {
				t.Fatalf("redis up: %+v %v, %d fallbacks", r, err, len(fallbacks))
			}

			srv.Stop()
			if _, err := primary.Allow(ctx, "k", l, now); err == nil {
				t.Fatal("redis down: the store reported no error")
			}
			var got []ratelimit.Result
			for i := 0; i < 3; i++ {
				r, err := s.Allow(ctx, "k", l, now)
				if err != nil {
					t.Fatalf("redis down, %s: %v", mode, err)
				}
				got = append(got, r)
			}
			if len(fallbacks) != 3 {
				t.Fatalf("%d fallbacks reported, want 3: %v", len(fallbacks), fallbacks)
			}
			switch mode {
			case ratelimit.OnErrorLocal: // the local bucket starts full: 2 of 3
				if !got[0].Allowed || !got[1].Allowed || got[2].Allowed {
					t.Fatalf("local: %+v", got)
				}
			case ratelimit.OnErrorDeny:
				for _, r := range got {
					if r.Allowed || r.RetryAfter != time.Second {
						t.Fatalf("deny: %+v", got)
					}
				}
			case ratelimit.OnErrorAllow:
				for _, r := range got {
					if !r.Allowed {
						t.Fatalf("allow: %+v", got)
					}
				}
			}

			srv.Restart()
			// Past the hold-off the primary is asked again. The restarted
			// Redis kept nothing (no persistence), so the bucket is full, and
			// the key is in Redis.
			r, err := s.Allow(ctx, "k", l, now.Add(2*time.Second))
			if err != nil || !r.Allowed || r.Remaining != 1 || len(fallbacks) != 3 {
				t.Fatalf("redis back: %+v %v, %d fallbacks (last %v)", r, err, len(fallbacks), fallbacks[len(fallbacks)-1])
			}
			if n, err := c.Exists(ctx, "down:"+string(mode)+":k").Result(); err != nil || n != 1 {
				t.Fatalf("redis back: key exists=%d %v", n, err)
			}
		})
	}
}

// BenchmarkRedisAllow measures one decision against a real local Redis
// (a round trip per call), serially and from parallel goroutines.
func BenchmarkRedisAllow(b *testing.B) {
	srv := startRedis(b)
	s := New(srv.client(b), Options{})
	l := ratelimit.Limit{Rate: 1_000_000, Per: time.Second, Burst: 1 << 30}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := s.Allow(ctx, "bench", l, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			key := fmt.Sprintf("bench-%d", n.Add(1))
			for pb.Next() {
				if _, err := s.Allow(ctx, key, l, time.Time{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// TestPausedRedisCostsOneTimeout: a Redis that hangs (SIGSTOP: connections
// stay open, nothing is answered) under concurrent open-loop load. Every
// decision waiting on it fails together one Timeout after the hang began,
// the fallback switches for everyone at the first failure, only one probe a
// second waits on Redis afterwards, and a probe after SIGCONT switches back.
// The p99 of the latency added while Redis hangs stays under the Timeout
// plus 5 ms. The Timeout is 100 ms, far above a loaded machine's scheduling
// noise, so the bound measures the mechanism: without the shared deadline
// and the shared switch, a quarter of the requests wait one to two
// Timeouts.
func TestPausedRedisCostsOneTimeout(t *testing.T) {
	const (
		timeout = 100 * time.Millisecond
		rate    = 1000 // decisions per second, each on its own goroutine
	)
	srv := startRedis(t)
	opts := &redis.Options{Addr: srv.Addr()}
	FailFast(opts, timeout)
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	var fallbacks atomic.Int64
	s := ratelimit.WithFallback(New(c, Options{Timeout: timeout}), ratelimit.NewMemory(ratelimit.MemoryOptions{}),
		ratelimit.OnErrorLocal, func(error) { fallbacks.Add(1) })
	l := ratelimit.Limit{Rate: 1_000_000, Per: time.Second, Burst: 1 << 20}
	load := func(d time.Duration) []time.Duration {
		n := int(d.Seconds() * rate)
		lat := make([]time.Duration, n)
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; i < n; i++ {
			// Open loop: request i starts at its time whatever the
			// others do (a closed loop would stop sending while Redis
			// hangs and hide the requests that would have waited).
			if wait := time.Until(start.Add(time.Duration(i) * time.Second / rate)); wait > 0 {
				time.Sleep(wait)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				began := time.Now()
				if _, err := s.Allow(ctx, "load:"+strconv.Itoa(i%64), l, began); err != nil {
					t.Error(err)
				}
				lat[i] = time.Since(began)
			}()
		}
		wg.Wait()
		return lat
	}
	pct := func(lat []time.Duration, p float64) time.Duration {
		sorted := append([]time.Duration(nil), lat...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		return sorted[int(p*float64(len(sorted)-1))]
	}

	base := load(500 * time.Millisecond)
	if n := fallbacks.Load(); n != 0 {
		t.Fatalf("%d fallbacks with Redis up", n)
	}
	srv.Pause()
	hung := load(2500 * time.Millisecond)
	srv.Resume()
	if fallbacks.Load() < int64(len(hung))*9/10 {
		t.Fatalf("only %d of %d decisions fell back while Redis hung", fallbacks.Load(), len(hung))
	}
	slow := 0
	for _, d := range hung {
		if d >= timeout/2 {
			slow++
		}
	}
	median := pct(base, 0.5)
	p99 := pct(hung, 0.99)
	t.Logf("Redis up: p50 %v p99 %v; Redis hung: p50 %v p99 %v max %v, %d of %d decisions took >= %v",
		median, pct(base, 0.99), pct(hung, 0.5), p99, pct(hung, 1), slow, len(hung), timeout/2)
	if added := p99 - median; added >= timeout+5*time.Millisecond {
		t.Fatalf("p99 added latency %v while Redis hung, want < %v", added, timeout+5*time.Millisecond)
	}

	// SIGCONT: within a probe interval a probe succeeds and Redis decides
	// again (no more fallbacks).
	if !polltest.Until(10*time.Second, func() bool {
		before := fallbacks.Load()
		_, _ = s.Allow(ctx, "after", l, time.Now())
		return fallbacks.Load() == before
	}) {
		t.Fatal("the store did not switch back to Redis after SIGCONT")
	}
}

// A decision's deadline counts from the oldest decision still in flight:
// the ones sent after it cannot be answered before it is.
func TestInflightOldestFirst(t *testing.T) {
	var w inflight
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	a, oldest := w.add(t0)
	if !oldest.Equal(t0) {
		t.Fatalf("alone: oldest %v", oldest)
	}
	b, oldest := w.add(t0.Add(50 * time.Millisecond))
	if !oldest.Equal(t0) {
		t.Fatalf("behind a: oldest %v, want a's start", oldest)
	}
	w.remove(a)
	c, oldest := w.add(t0.Add(60 * time.Millisecond))
	if !oldest.Equal(t0.Add(50 * time.Millisecond)) {
		t.Fatalf("a answered: oldest %v, want b's start", oldest)
	}
	w.remove(b)
	// A clock that stepped back (c, from t0+60ms, is still in flight)
	// never moves a deadline later than the decision's own.
	d, oldest := w.add(t0.Add(-time.Hour))
	if !oldest.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("after a clock step: oldest %v", oldest)
	}
	w.remove(c)
	w.remove(d)
	if w.order.Len() != 0 {
		t.Fatalf("%d left in flight", w.order.Len())
	}
}
