package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
	"github.com/contentguard/contentguard/xds/policypb"
)

// Target is what policies are applied to once the sidecar runs:
// sidecar.Server's Apply.
type Target interface {
	Apply(source, baseDir string, data []byte) error
}

// Handoff is the Apply of a Client whose sidecar starts with the first
// policy the control plane sends: until Attach it checks each policy (it
// decodes and an engine can be built from it, its files read from
// BaseDir) and keeps the latest for First; from Attach on it applies each
// to the target. A policy that arrived between First and Attach is applied
// at Attach.
type Handoff struct {
	baseDir string
	server  string

	mu     sync.Mutex
	ready  chan struct{}
	latest *pending
	handed *pending // returned by First
	target Target
}

type pending struct {
	policy *policy.Policy
	source string
	doc    []byte
}

// NewHandoff returns a handoff whose policies resolve file references
// against baseDir; server names the control plane in policy sources.
func NewHandoff(server, baseDir string) (*Handoff, error) {
	abs, err := filepath.Abs(baseDir)
	if err != nil {
		return nil, fmt.Errorf("xdsclient: base dir: %w", err)
	}
	return &Handoff{baseDir: abs, server: server, ready: make(chan struct{})}, nil
}

// Source names a policy resource from the control plane in errors, logs
// and /admin/policy.
func (h *Handoff) Source(p *policypb.Policy) string {
	return "xds://" + h.server + "/" + p.GetName()
}

// Apply is Options.Apply.
func (h *Handoff) Apply(p *policypb.Policy) error {
	h.mu.Lock()
	target := h.target
	h.mu.Unlock()
	if target != nil {
		return target.Apply(h.Source(p), h.baseDir, p.GetDocument())
	}
	pol, err := policyfile.Parse(h.Source(p), p.GetDocument())
	if err != nil {
		return err
	}
	pol.BaseDir = h.baseDir
	e, err := edge.New(context.Background(), pol, edge.Options{})
	if err != nil {
		return err
	}
	e.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.target != nil { // attached meanwhile
		return h.target.Apply(h.Source(p), h.baseDir, p.GetDocument())
	}
	first := h.latest == nil
	h.latest = &pending{policy: pol, source: h.Source(p), doc: p.GetDocument()}
	if first {
		close(h.ready)
	}
	return nil
}

// First waits for the first good policy.
func (h *Handoff) First(ctx context.Context) (*policy.Policy, error) {
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("xdsclient: no policy from the control plane: %w", ctx.Err())
	case <-h.ready:
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handed = h.latest
	return h.latest.policy, nil
}

// Attach sends every policy from now on to t, starting with one that came
// after First, if any.
func (h *Handoff) Attach(t Target) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.target != nil {
		return errors.New("xdsclient: attached twice")
	}
	h.target = t
	if h.latest != nil && h.latest != h.handed {
		return t.Apply(h.latest.source, h.baseDir, h.latest.doc)
	}
	return nil
}
