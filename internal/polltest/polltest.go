// Package polltest waits in tests for something that happens in the
// background: a bound against hangs, not a timing assertion.
package polltest

import "time"

// interval is the pause between two checks: short enough not to slow the
// tests, long enough not to spin a core.
const interval = 2 * time.Millisecond

// Until calls cond until it reports true, and then returns true, or until
// within has passed, and then returns false. The caller fails the test with
// what it knows about the state it waited for.
func Until(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}
