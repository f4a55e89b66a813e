package ratelimit_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge/ratelimit"
)

func BenchmarkGCRA(b *testing.B) {
	l := ratelimit.Limit{Rate: 100, Per: time.Minute, Burst: 20}
	var tat time.Time
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tat, _ = ratelimit.GCRA(tat, t0.Add(time.Duration(i)*time.Second), l)
	}
}

// BenchmarkMemoryAllow: one hot key; one million keys in turn (every call a
// different key, the map at full size); and both from parallel goroutines.
func BenchmarkMemoryAllow(b *testing.B) {
	l := ratelimit.Limit{Rate: 100, Per: time.Minute, Burst: 20}
	keys := make([]string, 1_000_000)
	for i := range keys {
		keys[i] = "ip:10." + strconv.Itoa(i)
	}
	b.Run("1key", func(b *testing.B) {
		m := ratelimit.NewMemory(ratelimit.MemoryOptions{})
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			m.Allow(context.Background(), "ip:203.0.113.7", l, t0)
		}
	})
	b.Run("1Mkeys", func(b *testing.B) {
		m := ratelimit.NewMemory(ratelimit.MemoryOptions{})
		for i := range keys {
			m.Allow(context.Background(), keys[i], l, t0)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			m.Allow(context.Background(), keys[i%len(keys)], l, t0)
		}
	})
	b.Run("1key-parallel", func(b *testing.B) {
		m := ratelimit.NewMemory(ratelimit.MemoryOptions{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Allow(context.Background(), "ip:203.0.113.7", l, t0)
			}
		})
	})
	b.Run("1Mkeys-parallel", func(b *testing.B) {
		m := ratelimit.NewMemory(ratelimit.MemoryOptions{})
		for i := range keys {
			m.Allow(context.Background(), keys[i], l, t0)
		}
		var next atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(7919))
			for pb.Next() {
				i++
				m.Allow(context.Background(), keys[i%len(keys)], l, t0)
			}
		})
	})
}

// BenchmarkMemoryHeap1M reports the heap one million keys take.
func BenchmarkMemoryHeap1M(b *testing.B) {
	for i := 0; i < b.N; i++ {
		heap, n := millionKeysHeap(b)
		b.ReportMetric(float64(heap)/1e6, "MB/1Mkeys")
		b.ReportMetric(float64(heap)/float64(n), "B/key")
	}
}

// BenchmarkMemoryHeapPerKey reports the heap per key of one million keys
// of each shape (see keyShapes): the numbers in docs/benchmarks-ratelimit.md.
func BenchmarkMemoryHeapPerKey(b *testing.B) {
	for _, shape := range keyShapes {
		b.Run(shape.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				const n = 1_000_000
				heap := keysHeap(b, n, shape.key)
				b.ReportMetric(float64(heap)/n, "B/key")
			}
		})
	}
}

func BenchmarkAppendHeaders(b *testing.B) {
	dst := make([][2]string, 0, 8)
	r := ratelimit.Result{Limit: 600, Remaining: 431, Reset: 17 * time.Second}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		dst = ratelimit.AppendHeaders(dst[:0], ratelimit.StyleIETF, r)
	}
}
