//go:build linux || darwin || freebsd || netbsd || openbsd

package sidecar

import (
	"net"
	"syscall"
)

// alive reports whether a pooled upstream connection is still open and
// quiet: a peek that would block. A connection the upstream closed while
// idle reads EOF; one with unexpected bytes waiting is not trustworthy
// either. It costs one non-blocking syscall, paid only before sending a
// request that could not be retried on another connection.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && ok
}
