package alarm

import (
	"sync"
	"testing"
	"time"
)

// fakeTimer is a Timer the test fires by hand: each Reset is reported on
// armed.
type fakeTimer struct {
	f     func()
	armed chan time.Duration
}

func (ft *fakeTimer) Reset(d time.Duration) bool { ft.armed <- d; return false }
func (ft *fakeTimer) Stop() bool                 { return false }

func newFake() (*Alarm, *fakeTimer) {
	ft := &fakeTimer{armed: make(chan time.Duration, 10)}
	a := New(func(f func()) Timer { ft.f = f; return ft })
	return a, ft
}

func TestSleepEndsWhenItsTimerFires(t *testing.T) {
	a, ft := newFake()
	// A timer that fires with no Sleep in progress wakes nobody later.
	ft.f()
	done := make(chan bool)
	go func() { done <- a.Sleep(time.Minute) }()
	if d := <-ft.armed; d != time.Minute {
		t.Fatalf("timer armed for %v, want 1m", d)
	}
	a.mu.Lock()
	rung := a.rung
	a.mu.Unlock()
	if rung {
		t.Fatal("a timer fired before the Sleep counted for it")
	}
	ft.f()
	if !<-done {
		t.Fatal("Sleep reported a stop")
	}
	go func() { done <- a.Sleep(time.Hour) }()
	if d := <-ft.armed; d != time.Hour {
		t.Fatalf("timer armed for %v, want 1h", d)
	}
	ft.f()
	if !<-done {
		t.Fatal("second Sleep reported a stop")
	}
}

func TestStopEndsSleepAndLaterOnes(t *testing.T) {
	a, ft := newFake()
	done := make(chan bool)
	go func() { done <- a.Sleep(time.Hour) }()
	<-ft.armed
	a.Stop()
	if <-done {
		t.Fatal("a stopped Sleep reported that its time passed")
	}
	a.Stop() // idempotent
	if a.Sleep(time.Hour) {
		t.Fatal("Sleep after Stop waited")
	}
}

// With real timers: many alarms sleeping at once each wake by their own
// timer (what a shared select statement gets wrong under Yaegi).
func TestManyAlarmsRealTimers(t *testing.T) {
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := New(nil)
			for j := 0; j < 3; j++ {
				if !a.Sleep(time.Millisecond) {
					t.Error("a real timer's Sleep reported a stop")
				}
			}
			a.Stop()
		}()
	}
	wg.Wait()
}
