// Package redistest starts a throwaway redis-server for tests: a real server
// on a free loopback port, without persistence, killed at test cleanup.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/syncbuf"
)

// Server is a redis-server owned by one test. Stop and Restart let a test
// take Redis away mid-test and bring it back on the same address.
type Server struct {
	tb   testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	// exited is closed when cmd's process has exited and been waited for.
	exited chan struct{}
}

// Start runs redis-server and returns its "127.0.0.1:port". A missing
// redis-server binary fails the test: CI must install it.
func Start(tb testing.TB) string {
	tb.Helper()
	return New(tb).Addr()
}

// New runs redis-server on a free loopback port, answering PING before it
// returns, and kills it at cleanup. A missing redis-server binary fails the
// test: CI must install it.
//
// The port is one the kernel had free a moment before; when another process
// takes it first, redis-server cannot bind and exits, and New tries another.
func New(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server is required (apt-get install redis-server): %v", err)
	}
	// Its own working directory: redis-server loads a dump.rdb it finds in
	// the current one, and a test must start from an empty server.
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir()}
	tb.Cleanup(s.Stop)
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		s.port = ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if last = s.start(); last == nil {
			return s
		}
	}
	tb.Fatalf("redis-server did not start: %v", last)
	return nil
}

// Addr returns the server's "127.0.0.1:port".
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Stop kills the server (SIGKILL, as a crash would) and waits for it to
// exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Pause stops the server process with SIGSTOP: it keeps its connections and
// its listening socket (the kernel still completes new connections) but
// answers nothing — a Redis that hangs, rather than one that is gone.
func (s *Server) Pause() {
	s.tb.Helper()
	s.signal(syscall.SIGSTOP)
}

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() {
	s.tb.Helper()
	s.signal(syscall.SIGCONT)
}

func (s *Server) signal(sig syscall.Signal) {
	s.tb.Helper()
	if s.cmd == nil {
		s.tb.Fatalf("redistest: %v to a stopped server", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("redistest: %v: %v", sig, err)
	}
}

// Restart starts a stopped server again on the same port, empty (there is no
// persistence), and waits until it answers PING. On a running server it
// stops it first.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.tb.Fatal(err)
	}
}

// start runs redis-server on s.port and waits until it answers PING, or
// until it exits (the port was taken) or 30s pass.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	cmd.Dir = s.dir
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ping(s.Addr())
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("redis-server on %s exited: %s", s.Addr(), out.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s did not answer PING: %v", s.Addr(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ping sends one PING in RESP and expects +PONG: a listening socket alone
// does not mean the server is ready for commands.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
