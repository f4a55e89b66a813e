package redistest

import (
	"net"
	"strings"
	"testing"
	"time"
)

// A server answers PING once New returns, refuses connections once stopped,
// and answers again on the same address after Restart.
func TestStopAndRestart(t *testing.T) {
	s := New(t)
	addr := s.Addr()
	if err := ping(addr); err != nil {
		t.Fatalf("after New: %v", err)
	}
	s.Stop()
	if err := ping(addr); err == nil {
		t.Fatal("a stopped server answered PING")
	}
	s.Stop() // stopping twice is harmless
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("restarted on %s, was %s", s.Addr(), addr)
	}
	if err := ping(addr); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
}

// A paused server accepts connections but answers nothing; resumed, it
// answers again with its data intact.
func TestPauseAndResume(t *testing.T) {
	s := New(t)
	s.Pause()
	if err := ping(s.Addr()); err == nil {
		t.Fatal("a paused server answered PING")
	}
	s.Resume()
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("after Resume: %v", err)
	}
}

// A port another process took first is noticed as soon as redis-server
// exits for it (New then tries another), not after the PING deadline.
func TestTakenPortFailsFast(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	s := New(t)
	s.Stop()
	s.port = taken.Addr().(*net.TCPAddr).Port
	began := time.Now()
	if err := s.start(); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("start on a taken port: %v, want redis-server to exit", err)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Fatalf("took %v: waited for the PING deadline instead of the exit", took)
	}
}
