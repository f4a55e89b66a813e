package stacktest

import (
	"sync"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/polltest"
)

func parked(mu *sync.Mutex, cond *sync.Cond, release *bool) {
	mu.Lock()
	for !*release {
		cond.Wait()
	}
	mu.Unlock()
}

func TestCount(t *testing.T) {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	release := false
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); parked(&mu, cond, &release) }()
	}
	if !polltest.Until(10*time.Second, func() bool { return Count("sync.(*Cond).Wait", "stacktest.parked") == 3 }) {
		t.Fatalf("%d goroutines parked, want 3", Count("sync.(*Cond).Wait", "stacktest.parked"))
	}
	mu.Lock()
	release = true
	cond.Broadcast()
	mu.Unlock()
	wg.Wait()
	if n := Count("stacktest.parked"); n != 0 {
		t.Fatalf("%d goroutines still in parked", n)
	}
}
