// Package storetest holds checks that every ratelimit.Store must pass, shared
// by the in-process store's tests and the Redis store's.
package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contentguard/contentguard/edge/ratelimit"
)

// AdmitConcurrently has goroutines callers each ask s for key `each` times at
// now, racing for one bucket, and returns how many requests were admitted. A
// store error fails the test.
func AdmitConcurrently(tb testing.TB, s ratelimit.Store, key string, l ratelimit.Limit, now time.Time, goroutines, each int) int64 {
	tb.Helper()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r, err := s.Allow(context.Background(), key, l, now)
				if err != nil {
					tb.Error(err)
					return
				}
				if r.Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return admitted.Load()
}
