//go:build linux || darwin || freebsd || netbsd || openbsd

package upstream

import (
	"net"
	"syscall"
)

// peeker checks a pooled upstream connection, keeping what it needs from
// one check to the next so that a check allocates nothing.
type peeker struct {
	raw  syscall.RawConn
	fn   func(fd uintptr) bool
	open bool
}

// alive reports whether c, a pooled upstream connection, is still open and
// quiet: a peek that would block. A connection the upstream closed while
// idle reads EOF; one with unexpected bytes waiting is not trustworthy
// either: its bytes would be read as the next request's answer. It costs
// one non-blocking syscall per reuse.
func (p *peeker) alive(c net.Conn) bool {
	if p.raw == nil {
		sc, ok := c.(syscall.Conn)
		if !ok {
			return true
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		p.raw = raw
		p.fn = func(fd uintptr) bool {
			var b [1]byte
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			p.open = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
			return true
		}
	}
	p.open = false
	err := p.raw.Read(p.fn)
	return err == nil && p.open
}
