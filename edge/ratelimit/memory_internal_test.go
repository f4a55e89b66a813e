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

// BenchmarkTwoMillionClientsThenIdle: two million distinct clients (IPv4
// keys shaped as the engine makes them) each send one request; then they
// go idle and one periodic sweep runs after their buckets have refilled.
// It reports the heap the store holds at the peak and after the sweep.
func BenchmarkTwoMillionClientsThenIdle(b *testing.B) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	l := Limit{Rate: 100, Per: time.Minute, Burst: 20}
	heapNow := func() float64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapAlloc)
	}
	for i := 0; i < b.N; i++ {
		base := heapNow()
		m := NewMemory(MemoryOptions{})
		for c := 0; c < 2_000_000; c++ {
			key := "api|ip:10." + strconv.Itoa(c>>16&255) + "." + strconv.Itoa(c>>8&255) + "." + strconv.Itoa(c&255)
			if c >= 1<<24 {
				b.Fatal("more clients than 10.0.0.0/8 holds")
			}
			if _, err := m.Allow(context.Background(), key, l, t0); err != nil {
				b.Fatal(err)
			}
		}
		peak := heapNow() - base
		keys := m.Len()
		m.sweepAll(t0.Add(l.Per + DefaultSweepInterval))
		idle := heapNow() - base
		runtime.KeepAlive(m)
		b.ReportMetric(float64(keys), "keys")
		b.ReportMetric(peak/1e6, "MB-peak")
		b.ReportMetric(idle/1e6, "MB-idle")
	}
}
