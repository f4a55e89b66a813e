// Package clocktest is a settable clock for tests: code under test reads
// Now (pass the method value as its clock), the test moves time with
// Advance. Safe for concurrent use, so background goroutines may read it.
//
// Native tests only: a test run under Yaegi defines its clock inside the
// interpreted program.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a time source that stands still until advanced.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock reading start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the clock forward by d (back, for a negative d).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
