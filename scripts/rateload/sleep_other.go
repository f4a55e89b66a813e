//go:build !linux

package main

import "time"

// precise falls back to the runtime's timers elsewhere (about 1 ms
// resolution when the process is idle; see sleep_linux.go).
func precise() func(time.Duration) { return time.Sleep }
