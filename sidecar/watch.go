package sidecar

import (
	"context"

	"github.com/contentguard/contentguard/policy/policyfile"
)

// watch reloads PolicyFile whenever a new document appears there (see
// policyfile.Watch); reloadFrom logs and counts what it refuses.
func (s *Server) watch(ctx context.Context) {
	policyfile.Watch(ctx, s.opts.PolicyFile, s.opts.WatchInterval,
		func() string { return s.state.Load().Policy.Hash },
		func(data []byte) { _ = s.reloadFrom(data) })
}
