// Package alarm is a sleep that another goroutine can cut short: what the
// background loops of the edge packages (the memory rate-limit store's
// sweeper, the JWKS refresh) wait with.
//
// It exists because those packages run under Yaegi v0.16.1, whose select
// statement keeps its cases in the compiled statement itself: two goroutines
// running the same select (two stores, two JWT providers) race on that list
// and can end up waiting on each other's channels. An Alarm waits on a
// sync.Cond instead, woken by one timer made when the Alarm is — not one per
// Sleep, because Yaegi also races when two goroutines first hand the same
// interpreted function to the host at once.
package alarm

import (
	"sync"
	"time"
)

// Timer is the part of *time.Timer an Alarm uses: Reset arms it, and when it
// fires it calls the function it was made with.
type Timer interface {
	Reset(d time.Duration) bool
	Stop() bool
}

// NewTimer makes a stopped Timer that calls f when it fires: time.AfterFunc
// (see Real), or a test's own.
type NewTimer func(f func()) Timer

// Real makes a stopped *time.Timer that calls f.
func Real(f func()) Timer {
	t := time.AfterFunc(time.Hour, f)
	t.Stop()
	return t
}

// Alarm is one sleeper's alarm clock. Sleep is meant for one goroutine at a
// time; Stop may be called from any goroutine, any number of times.
type Alarm struct {
	timer Timer

	mu    sync.Mutex
	cond  *sync.Cond
	rung  bool // the timer fired since the Sleep in progress armed it
	off   bool
	armed bool
}

// New returns an Alarm whose timer newTimer makes (nil: Real).
func New(newTimer NewTimer) *Alarm {
	a := &Alarm{}
	a.cond = sync.NewCond(&a.mu)
	if newTimer == nil {
		newTimer = Real
	}
	a.timer = newTimer(a.ring)
	return a
}

// Sleep waits for d or until Stop, and reports whether d passed: false
// once the alarm is stopped, at once if it already was.
func (a *Alarm) Sleep(d time.Duration) bool {
	a.mu.Lock()
	if a.off {
		a.mu.Unlock()
		return false
	}
	a.rung = false
	a.armed = true
	a.timer.Reset(d)
	for !a.rung && !a.off {
		a.cond.Wait()
	}
	a.armed = false
	passed := !a.off
	a.mu.Unlock()
	a.timer.Stop()
	return passed
}

// ring is the timer's callback. A timer that fires while no Sleep is in
// progress (it was stopped too late) wakes nobody.
func (a *Alarm) ring() {
	a.mu.Lock()
	if a.armed {
		a.rung = true
		a.cond.Broadcast()
	}
	a.mu.Unlock()
}

// Stop ends the Sleep in progress, if any, and every later one at once.
func (a *Alarm) Stop() {
	a.mu.Lock()
	a.off = true
	a.cond.Broadcast()
	a.mu.Unlock()
	a.timer.Stop()
}
