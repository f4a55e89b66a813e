// Package stacktest counts goroutines by what they run, for tests that
// wait until workers are parked or check that none outlived their work:
// unlike runtime.NumGoroutine, a count of the goroutines of one package or
// in one call is not blurred by the test's own, the runtime's or other
// packages' goroutines.
package stacktest

import (
	"runtime"
	"strings"
)

// Count returns how many goroutines have a stack holding every one of
// frames (function names as the runtime prints them, e.g.
// "sync.(*Cond).Wait" or "contentguard/sidecar.").
func Count(frames ...string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		all := true
		for _, f := range frames {
			all = all && strings.Contains(g, f)
		}
		if all {
			count++
		}
	}
	return count
}
