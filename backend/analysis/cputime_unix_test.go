//go:build unix

package analysis

import "syscall"

// processCPUSeconds is the user+system CPU time of this process, so a
// benchmark can report work independent of how loaded the machine is.
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
