package redistest

import "testing"

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
