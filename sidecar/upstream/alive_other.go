//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package upstream

import "net"

// peeker cannot peek without blocking here: a pooled connection is assumed
// open (a closed one fails the request with 502).
type peeker struct{}

func (peeker) alive(net.Conn) bool { return true }
