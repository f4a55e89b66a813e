package kong

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/edge/ratelimit"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
)

// source is one policy document (a file, or inline YAML from an instance's
// configuration) and the engine enforcing it. Instances naming the same
// document share it: one engine, one set of circuit breakers, one memory
// rate-limit store. A file is watched and reloaded; the swap is atomic and a
// bad document leaves the policy in force.
type source struct {
	node *Node
	path string // the file, absolute; "" for an inline policy

	mu       sync.Mutex                 // one reload at a time
	inForce  atomic.Pointer[generation] // read once per request
	breakers *breaker.Registry
	local    *ratelimit.Memory
}

// generation is a policy and the engine built from it.
type generation struct {
	policy *policy.Policy
	engine *edge.Engine
}

// sourceKey names the document an instance configures: its file's absolute
// path, or the hash of its inline text.
func sourceKey(c *Config) (key, path string, err error) {
	if c.PolicyFile != "" {
		abs, err := filepath.Abs(c.PolicyFile)
		if err != nil {
			return "", "", fmt.Errorf("kong: policy_file %q: %w", c.PolicyFile, err)
		}
		return "file:" + abs, abs, nil
	}
	sum := sha256.Sum256([]byte(c.Policy))
	return "inline:" + hex.EncodeToString(sum[:]), "", nil
}

// source returns the source c configures, loading it the first time. A
// document that fails to load is not remembered: the next instance naming
// it tries again.
func (n *Node) source(c *Config) (*source, error) {
	key, path, err := sourceKey(c)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, errClosed
	}
	if s := n.sources[key]; s != nil {
		return s, nil
	}
	var p *policy.Policy
	if path != "" {
		p, err = policyfile.Load(path)
	} else {
		// Relative file references of an inline policy resolve against
		// the plugin server's working directory (Kong's prefix).
		p, err = policyfile.Parse("inline policy", []byte(c.Policy))
	}
	if err != nil {
		return nil, fmt.Errorf("kong: %w", err)
	}
	s := &source{
		node:     n,
		path:     path,
		breakers: edge.NewBreakers(p, n.now, n.metrics),
		local:    ratelimit.NewMemory(ratelimit.MemoryOptions{}),
	}
	eng, err := s.build(p)
	if err != nil {
		s.local.Close()
		return nil, err
	}
	s.inForce.Store(&generation{policy: p, engine: eng})
	n.metrics.PolicyLoaded(p, nil)
	n.sources[key] = s
	n.log.Info("policy loaded", "policy", p.Metadata.Name, "version", p.Metadata.Version, "hash", p.Hash, "source", p.Source)
	if path != "" {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			policyfile.Watch(n.ctx, path, n.every,
				func() string { return s.inForce.Load().policy.Hash },
				func(data []byte) { _ = s.reload(data) })
		}()
	}
	return s, nil
}

// build makes the engine for p, sharing the source's breakers and memory
// buckets (so budgets and breaker states survive reloads) and the node's
// Redis clients. It has no side effects on failure.
func (s *source) build(p *policy.Policy) (*edge.Engine, error) {
	var rates ratelimit.Store
	if p.Spec.RateLimit.Store.Type == "redis" {
		var err error
		if rates, err = s.node.redis.Get(p.Spec.RateLimit.Store.URL); err != nil {
			return nil, fmt.Errorf("kong: policy %s: %w", p.Source, err)
		}
	}
	eng, err := edge.New(context.Background(), p, edge.Options{
		Now:            s.node.now,
		RateStore:      rates,
		LocalRateStore: s.local,
		Breakers:       s.breakers,
		Observer:       s.node.metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("kong: policy %s: %w", p.Source, err)
	}
	return eng, nil
}

// engine returns the engine in force; a reload may replace it at any time,
// so a request reads it once.
func (s *source) engine() *edge.Engine { return s.inForce.Load().engine }

// reload applies a new version of the file: validated, built and swapped in
// whole, or refused with the policy in force kept, logged and counted.
func (s *source) reload(data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.node
	p, err := policyfile.ParseFile(s.path, data)
	var eng *edge.Engine
	if err == nil {
		eng, err = s.build(p)
	}
	if err != nil {
		n.metrics.ReloadFailed()
		n.log.Error("policy reload failed; keeping the policy in force", "err", err.Error(), "policy", s.path)
		return err
	}
	old := s.inForce.Swap(&generation{policy: p, engine: eng})
	// The breakers outlive policies; their thresholds follow the one in
	// force. Requests still deciding on the old engine finish on it: a
	// closed engine only stops its background JWKS refresh.
	s.breakers.Reconfigure(edge.BreakerSettings(p, n.now, n.metrics))
	old.engine.Close()
	n.metrics.Reloaded(p, old.policy)
	n.log.Info("policy reloaded", "policy", p.Metadata.Name, "version", p.Metadata.Version, "hash", p.Hash, "source", p.Source)
	return nil
}

func (s *source) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inForce.Load().engine.Close()
	s.local.Close()
}
