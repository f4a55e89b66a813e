package sidecar

import (
	"context"
	"net"
)

// Serve runs the public handler on public and the admin handler on admin
// (nil: no admin listener) with hardened http.Servers until ctx ends. Then it
// turns /readyz to 503, waits DrainDelay, stops accepting, lets in-flight
// requests finish for up to DrainTimeout, and returns.
func (s *Server) Serve(ctx context.Context, public, admin net.Listener) error {
	return nil
}
