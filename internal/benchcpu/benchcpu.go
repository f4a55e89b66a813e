// Package benchcpu adds a cpu-ns/op metric to benchmarks: the process's
// user+system CPU time per operation. On a shared machine wall time per op
// includes waiting for a core; CPU time does not, so it is the number to
// compare across runs.
package benchcpu

import (
	"syscall"
	"testing"
)

// Report starts measuring; call what it returns when the timed loop ends:
//
//	defer benchcpu.Report(b)()
func Report(b *testing.B) func() {
	start := processCPUNanos()
	return func() {
		if start < 0 || b.N == 0 {
			return
		}
		b.ReportMetric(float64(processCPUNanos()-start)/float64(b.N), "cpu-ns/op")
	}
}

func processCPUNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
