package tcptest

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// queued is FIONREAD (SIOCINQ): the bytes waiting in c's receive queue.
func queued(t *testing.T, c net.Conn) int {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int32
	var errno syscall.Errno
	if err := raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	}); err != nil || errno != 0 {
		t.Fatalf("FIONREAD: %v %v", err, errno)
	}
	return int(n)
}

func TestRefusingAddrRefuses(t *testing.T) {
	addr := RefusingAddr(t)
	for i := 0; i < 3; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("%s accepted a connection", addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused", addr, err)
		}
	}
}

// TestWaitDelivered: once it returns, the peer can read what was written
// and then the FIN without waiting.
func TestWaitDelivered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := <-accepted
	defer peer.Close()
	if _, err := io.WriteString(c, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	WaitDelivered(t, c, 10*time.Second)
	if n := queued(t, peer); n != 5 {
		t.Fatalf("the peer's receive queue holds %d bytes after WaitDelivered, want 5", n)
	}
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(peer)
	if string(b) != "hello" || err != nil {
		t.Fatalf("peer read %q %v, want the bytes and the FIN", b, err)
	}
}
