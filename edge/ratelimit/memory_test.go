package ratelimit_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/edge/ratelimit/internal/storetest"
	"github.com/contentguard/contentguard/internal/polltest"
)

// The memory store gives exactly the pure GCRA's answers, key by key.
func TestMemoryMatchesGCRA(t *testing.T) {
	ctx := context.Background()
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	defer m.Close()
	l := ratelimit.Limit{Rate: 5, Per: 500 * time.Millisecond, Burst: 3}
	tats := map[string]time.Time{}
	gaps := []time.Duration{0, 0, 0, 0, 50, 100, 0, 0, 230, 1, 99, 700, 0, 0, 0, 0}
	now := t0
	for i, gap := range gaps {
		now = now.Add(gap * time.Millisecond)
		for _, key := range []string{"a", "b"} {
			if key == "b" && i%3 == 0 {
				continue // b sees a different sequence
			}
			got, err := m.Allow(ctx, key, l, now)
			if err != nil {
				t.Fatal(err)
			}
			var want ratelimit.Result
			tats[key], want = ratelimit.GCRA(tats[key], now, l)
			if got != want {
				t.Fatalf("step %d key %s: memory %+v, GCRA %+v", i, key, got, want)
			}
		}
	}
}

func TestMemoryRejectsBadInput(t *testing.T) {
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	defer m.Close()
	r, err := m.Allow(context.Background(), "k", ratelimit.Limit{Rate: 0, Per: time.Second}, t0)
	if err == nil || r.Allowed {
		t.Fatalf("zero rate: %+v, %v", r, err)
	}
	r, err = m.Allow(context.Background(), "k", ratelimit.Limit{Rate: 1, Per: time.Second}, time.Time{})
	if err == nil || r.Allowed {
		t.Fatalf("zero time: %+v, %v", r, err)
	}
	if m.Len() != 0 {
		t.Fatalf("bad input stored a key")
	}
}

// 50 goroutines race for one bucket: exactly the burst gets through.
func TestMemoryConcurrentAdmitsExactlyBurst(t *testing.T) {
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{Shards: 4})
	defer m.Close()
	l := ratelimit.Limit{Rate: 1, Per: time.Hour, Burst: 137}
	admitted := storetest.AdmitConcurrently(t, m, "shared", l, t0, 50, 20)
	if admitted != 137 {
		t.Fatalf("admitted %d, want the burst 137", admitted)
	}
}

// Refused requests never add keys, and full buckets expire: once a shard has
// doubled, an insert sweeps the keys whose TAT has passed.
func TestMemorySweepsExpiredKeys(t *testing.T) {
	ctx := context.Background()
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{Shards: 1})
	defer m.Close()
	l := ratelimit.Limit{Rate: 1, Per: time.Second}
	for i := 0; i < 1000; i++ {
		if _, err := m.Allow(ctx, "old-"+strconv.Itoa(i), l, t0); err != nil {
			t.Fatal(err)
		}
	}
	if m.Len() != 1000 {
		t.Fatalf("Len %d after 1000 keys", m.Len())
	}
	// A minute later the old keys' buckets are full again. New keys push
	// the shard past its sweep mark (1024), which drops all 1000 old ones.
	later := t0.Add(time.Minute)
	for i := 0; i < 100; i++ {
		if _, err := m.Allow(ctx, "new-"+strconv.Itoa(i), l, later); err != nil {
			t.Fatal(err)
		}
	}
	if m.Len() > 100 {
		t.Fatalf("Len %d: expired keys were not swept", m.Len())
	}
	// Forgetting an expired key changes nothing: it answers as a full bucket.
	r, _ := m.Allow(ctx, "old-1", l, later)
	if !r.Allowed || r.Remaining != 0 {
		t.Fatalf("old key after sweep: %+v", r)
	}
}

// At MaxKeys with nothing expired the store evicts instead of growing, and
// the key with the most debt (largest TAT) is never the one evicted.
func TestMemoryBoundedEvictsSmallestTAT(t *testing.T) {
	ctx := context.Background()
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{MaxKeys: 64, Shards: 1})
	defer m.Close()
	heavy := ratelimit.Limit{Rate: 10, Per: 24 * time.Hour}
	for i := 0; i < 10; i++ {
		if r, _ := m.Allow(ctx, "heavy", heavy, t0); !r.Allowed {
			t.Fatalf("heavy request %d refused", i)
		}
	}
	light := ratelimit.Limit{Rate: 1, Per: time.Hour}
	for i := 0; i < 10000; i++ {
		if r, _ := m.Allow(ctx, "flood-"+strconv.Itoa(i), light, t0); !r.Allowed {
			t.Fatalf("flood key %d refused", i)
		}
		if m.Len() > 64 {
			t.Fatalf("Len %d > MaxKeys 64 after %d keys", m.Len(), i)
		}
	}
	if r, _ := m.Allow(ctx, "heavy", heavy, t0); r.Allowed {
		t.Fatalf("heavy key was evicted by the flood: %+v", r)
	}
}

// The periodic sweeper removes expired keys by the wall clock and exits on
// Close.
func TestMemoryPeriodicSweepAndClose(t *testing.T) {
	before := runtime.NumGoroutine()
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{SweepInterval: time.Millisecond})
	past := time.Now().Add(-time.Hour)
	for i := 0; i < 100; i++ {
		if _, err := m.Allow(context.Background(), strconv.Itoa(i), ratelimit.Limit{Rate: 1, Per: time.Second}, past); err != nil {
			t.Fatal(err)
		}
	}
	if !polltest.Until(10*time.Second, func() bool { return m.Len() == 0 }) {
		t.Fatalf("sweeper left %d expired keys", m.Len())
	}
	m.Close()
	m.Close() // idempotent
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("goroutines: %d before, %d after Close", before, after)
	}
}

// One million distinct keys fit in well under 200 MB of heap.
func TestMemoryMillionKeysHeap(t *testing.T) {
	heap, n := millionKeysHeap(t)
	t.Logf("%d keys: %.1f MB heap, %.0f bytes/key", n, float64(heap)/1e6, float64(heap)/float64(n))
	if heap > 200<<20 {
		t.Fatalf("%d keys take %d bytes of heap, want < 200 MiB", n, heap)
	}
}

func millionKeysHeap(tb testing.TB) (heap uint64, keys int) {
	const n = 1_000_000
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	l := ratelimit.Limit{Rate: 100, Per: time.Minute, Burst: 20}
	buf := make([]byte, 0, 32)
	for i := 0; i < n; i++ {
		buf = append(append(buf[:0], "ip:10."...), strconv.Itoa(i)...) // like "ip:10.123456"
		if _, err := m.Allow(context.Background(), string(buf), l, t0); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if m.Len() != n {
		tb.Fatalf("Len %d, want %d", m.Len(), n)
	}
	heap = ms.HeapAlloc - before
	runtime.KeepAlive(m)
	return heap, n
}
