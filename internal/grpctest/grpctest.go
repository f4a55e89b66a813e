// Package grpctest serves gRPC services on loopback for tests: a real
// server on a free port, stopped when the test ends.
package grpctest

import (
	"net"
	"testing"

	"google.golang.org/grpc"
)

// Serve starts a gRPC server with the services register adds, on a free
// loopback port or addr when given, and returns its address. The server
// stops when the test ends.
func Serve(t testing.TB, addr string, register func(*grpc.Server)) string {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	register(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	return ln.Addr().String()
}
