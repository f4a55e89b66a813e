package ratelimit_test

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/edge/ratelimit/internal/storetest"
	"github.com/contentguard/contentguard/internal/clocktest"
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

// The periodic sweeper removes the keys expired by its clock, keeps the
// others, and is gone once Close returns. Nothing here depends on timing:
// the clock is the test's, and the test waits for sweeps to have happened.
func TestMemoryPeriodicSweepAndClose(t *testing.T) {
	clk := clocktest.New(t0)
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{SweepInterval: time.Millisecond, Now: clk.Now})
	second := ratelimit.Limit{Rate: 1, Per: time.Second}
	for i := 0; i < 100; i++ {
		if _, err := m.Allow(context.Background(), strconv.Itoa(i), second, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Allow(context.Background(), "busy", ratelimit.Limit{Rate: 1, Per: time.Hour}, t0); err != nil {
		t.Fatal(err)
	}
	// Sweeps at t0 find nothing expired.
	swept := ratelimit.Sweeps(m)
	if !polltest.Until(10*time.Second, func() bool { return ratelimit.Sweeps(m) >= swept+2 }) {
		t.Fatal("the sweeper did not run")
	}
	if n := m.Len(); n != 101 {
		t.Fatalf("Len %d after sweeps with nothing expired, want 101", n)
	}
	// A minute later the 100 one-second buckets are full again: swept; the
	// one-hour bucket is not.
	clk.Advance(time.Minute)
	if !polltest.Until(10*time.Second, func() bool { return m.Len() == 1 }) {
		t.Fatalf("sweeper left %d keys, want 1", m.Len())
	}
	if r, _ := m.Allow(context.Background(), "busy", ratelimit.Limit{Rate: 1, Per: time.Hour}, t0.Add(time.Minute)); r.Allowed {
		t.Fatal("the sweeper dropped a key that had not expired")
	}
	if n := goroutinesIn("ratelimit.(*Memory).sweepEvery"); n != 1 {
		t.Fatalf("%d sweeper goroutines before Close, want 1", n)
	}
	m.Close()
	m.Close() // idempotent
	// Close waited for the sweeper: its goroutine ends (it may take a moment
	// to leave the scheduler's list after it signalled).
	if !polltest.Until(10*time.Second, func() bool { return goroutinesIn("ratelimit.(*Memory).sweepEvery") == 0 }) {
		t.Fatal("the sweeper goroutine outlived Close")
	}
}

// goroutinesIn counts the goroutines whose stack contains fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), fn+"(")
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
	buf := make([]byte, 0, 32)
	return keysHeap(tb, n, func(i int) string {
		buf = append(append(buf[:0], "ip:10."...), strconv.Itoa(i)...) // like "ip:10.123456"
		return string(buf)
	}), n
}

// keysHeap is the heap n distinct keys (key(i) for i < n) take in a memory
// store with the default options, measured after a GC.
func keysHeap(tb testing.TB, n int, key func(i int) string) uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	l := ratelimit.Limit{Rate: 100, Per: time.Minute, Burst: 20}
	for i := 0; i < n; i++ {
		if _, err := m.Allow(context.Background(), key(i), l, t0); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if m.Len() != n {
		tb.Fatalf("Len %d, want %d", m.Len(), n)
	}
	heap := ms.HeapAlloc - before
	runtime.KeepAlive(m)
	return heap
}

// keyShapes are the bucket keys the engine makes (route name, "|", kind,
// value), the longest key stored as it is, and client-chosen header values
// far longer, which the store keeps as digests.
var keyShapes = []struct {
	name string
	key  func(i int) string
}{
	{"ipv4", func(i int) string {
		return "api|ip:10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
	}},
	{"ipv6", func(i int) string { return "api|ip:2001:db8:" + strconv.FormatInt(int64(i), 16) + "::/64" }},
	{"64B", func(i int) string {
		k := "api|hdr:" + strconv.Itoa(i)
		return k + strings.Repeat("x", ratelimit.MaxKeyBytes-len(k))
	}},
	{"header-1KiB", func(i int) string { return "api|hdr:" + strconv.Itoa(i) + strings.Repeat("x", 1024) }},
}

// Whatever the client sends, a key costs at most as much as a MaxKeyBytes
// key: a thousand 1 KiB header values take less heap than a thousand
// 64-byte ones, not sixteen times more.
func TestMemoryLongKeysAreBounded(t *testing.T) {
	const n = 100_000
	per := map[string]float64{}
	for _, shape := range keyShapes[2:] {
		per[shape.name] = float64(keysHeap(t, n, shape.key)) / n
	}
	t.Logf("bytes/key: %v", per)
	if per["header-1KiB"] > per["64B"] {
		t.Fatalf("1 KiB keys take %.0f bytes each, more than 64-byte keys (%.0f)", per["header-1KiB"], per["64B"])
	}
	// Distinct long keys stay distinct: each has its own bucket.
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	l := ratelimit.Limit{Rate: 1, Per: time.Hour}
	long := strings.Repeat("y", 500)
	for _, k := range []string{long + "a", long + "b"} {
		if r, _ := m.Allow(context.Background(), k, l, t0); !r.Allowed {
			t.Fatalf("%q...: refused on its first request", k[len(k)-3:])
		}
	}
	if r, _ := m.Allow(context.Background(), long+"a", l, t0); r.Allowed {
		t.Fatal("a long key's bucket was not kept")
	}
}
