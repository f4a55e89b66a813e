// Package tcptest gives tests facts about TCP that they would otherwise
// guess with a sleep: an address that refuses connections for as long as
// the test runs, and the moment a peer has received what was sent.
package tcptest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/polltest"
)

// RefusingAddr returns a loopback "host:port" that refuses connections
// until the test ends: a socket bound to it that never listens holds the
// port, so no other process can take it in between (as it can a port that
// was listened on and closed).
func RefusingAddr(tb testing.TB) string {
	tb.Helper()
	addr, release, err := refusingAddr()
	if err != nil {
		tb.Fatalf("tcptest: %v", err)
	}
	tb.Cleanup(release)
	return addr
}

// WaitDelivered waits until the peer of c has acknowledged everything
// written to c, the FIN of a CloseWrite included: the bytes are in the
// peer's receive queue, where its next read or liveness check sees them.
// It fails the test after within.
func WaitDelivered(tb testing.TB, c net.Conn, within time.Duration) {
	tb.Helper()
	if err := AwaitDelivered(c, within); err != nil {
		tb.Fatal(err)
	}
}

// AwaitDelivered is WaitDelivered for goroutines other than the test's
// (a server under test's peer): it returns an error instead of failing.
func AwaitDelivered(c net.Conn, within time.Duration) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("tcptest: %T is not a TCP connection", c)
	}
	var last int
	var lastErr error
	if !polltest.Until(within, func() bool {
		last, lastErr = unacknowledged(tc)
		return lastErr == nil && last == 0
	}) {
		return fmt.Errorf("tcptest: %d bytes still unacknowledged after %v (%v)", last, within, lastErr)
	}
	return nil
}

// Serve accepts connections on a loopback listener until the test ends and
// hands each to serve on a goroutine of its own (serve closes it); it
// returns the listener's "host:port". For upstreams that must speak raw
// bytes, which an httptest.Server would not let a test write.
func Serve(tb testing.TB, serve func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("tcptest: %v", err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}
