package breaker_test

import (
	"testing"

	"github.com/contentguard/contentguard/edge/breaker"
)

// BenchmarkBreakerAllowDone is the breaker's cost per proxied request.
func BenchmarkBreakerAllowDone(b *testing.B) {
	s := breaker.Settings{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20}
	b.Run("serial", func(b *testing.B) {
		br := breaker.New("up", s)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			t, ok, _ := br.Allow()
			if ok {
				br.Done(t, true)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		br := breaker.New("up", s)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				t, ok, _ := br.Allow()
				if ok {
					br.Done(t, true)
				}
			}
		})
	})
}
