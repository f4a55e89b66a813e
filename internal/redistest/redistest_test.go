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
