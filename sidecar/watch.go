package sidecar

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/contentguard/contentguard/policy/policyfile"
)

// watch polls PolicyFile: a change of modification time or size makes it
// read and hash the file, and a new hash reloads it. Polling needs no
// dependency and sees every way a file is replaced (in place, rename, a
// Kubernetes ConfigMap's symlink swap). A document a reload already tried
// last (here or by Reload, on SIGHUP) is not tried again until it changes,
// so a broken file is logged and counted once.
func (s *Server) watch(ctx context.Context) {
	t := time.NewTicker(s.opts.WatchInterval)
	defer t.Stop()
	// The first poll always reads the file: it may have changed between
	// the caller loading it and this goroutine starting.
	var lastMod time.Time
	var lastSize int64 = -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(s.opts.PolicyFile)
		if err != nil || fi.ModTime().Equal(lastMod) && fi.Size() == lastSize {
			continue // a missing file keeps the policy in force; nothing new
		}
		lastMod, lastSize = fi.ModTime(), fi.Size()
		data, err := readPolicyFile(s.opts.PolicyFile)
		if err != nil {
			continue
		}
		hash := documentHash(data)
		if s.tried(hash) || hash == s.state.Load().policy.Hash {
			continue
		}
		_ = s.reloadFrom(data) // logged and counted inside
	}
}

// readPolicyFile reads a policy document, bounded like policyfile.Load.
func readPolicyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sidecar: read policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, policyfile.MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("sidecar: read policy %s: %w", path, err)
	}
	if len(data) > policyfile.MaxFileBytes {
		return nil, fmt.Errorf("sidecar: read policy %s: larger than %d bytes", path, policyfile.MaxFileBytes)
	}
	return data, nil
}
