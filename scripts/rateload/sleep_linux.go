package main

import (
	"runtime"
	"syscall"
	"time"
)

// precise locks the calling goroutine to its own OS thread and returns a
// sleep for it. The Go runtime's timers wait in epoll with millisecond
// resolution when the process is otherwise idle (netpoll rounds any shorter
// wait up to 1 ms), which would make the generator up to 1 ms late — more
// than the effect being measured. nanosleep(2) on a dedicated thread, with
// the thread's timer slack lowered from the default 50 µs to 1 µs, wakes
// within tens of microseconds instead.
//
// The goroutine must end still locked: the runtime then ends the thread
// rather than reuse it with the changed timer slack.
func precise() func(time.Duration) {
	runtime.LockOSThread()
	const prSetTimerSlack = 29 // PR_SET_TIMERSLACK, linux/prctl.h
	// Best effort: with the default slack the sleep is only less exact.
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, 1000, 0)
	return func(d time.Duration) {
		ts := syscall.NsecToTimespec(int64(d))
		for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
		}
	}
}
