package ratelimit

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// After a flood of keys has expired, a sweep gives the map's memory back
// (Go maps keep their buckets after delete, so the shard rebuilds its map).
func TestMemorySweepReleasesMemory(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	heapNow := func() int64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	base := heapNow()
	m := NewMemory(MemoryOptions{Shards: 2})
	l := Limit{Rate: 1, Per: time.Second}
	for i := 0; i < 200_000; i++ {
		if _, err := m.Allow(context.Background(), "flood-"+strconv.Itoa(i), l, t0); err != nil {
			t.Fatal(err)
		}
	}
	full := heapNow() - base
	m.sweepAll(t0.Add(time.Hour))
	if m.Len() != 0 {
		t.Fatalf("Len %d after sweeping expired keys", m.Len())
	}
	empty := heapNow() - base
	runtime.KeepAlive(m)
	t.Logf("heap: %d bytes with 200k keys, %d after the sweep", full, empty)
	if empty > full/10 {
		t.Fatalf("heap %d after the sweep, %d before: the maps kept their memory", empty, full)
	}
}
