package policyfile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"time"
)

// Watch polls the policy file at path every interval until ctx is done and
// hands apply each new document: one whose SHA-256 (hex, as Policy.Hash)
// differs from the last document seen and from current(), the hash of the
// policy in force (which may have been reloaded by other means).
//
// A change of modification time or size makes it read and hash the file.
// Polling needs no dependency and sees every way a file is replaced: in
// place, by rename, by a Kubernetes ConfigMap's symlink swap. A missing or
// unreadable file changes nothing. A document is handed over once: if apply
// refuses it, it is not retried until the file changes again, so a broken
// file is reported once.
func Watch(ctx context.Context, path string, interval time.Duration, current func() string, apply func(data []byte)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	// The first poll always reads the file: it may have changed between
	// the caller loading it and this goroutine starting.
	var lastMod time.Time
	var lastSize int64 = -1
	lastHash := current()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(path)
		if err != nil || fi.ModTime().Equal(lastMod) && fi.Size() == lastSize {
			continue
		}
		lastMod, lastSize = fi.ModTime(), fi.Size()
		data, err := Read(path)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(data)
		hash := hex.EncodeToString(sum[:])
		if hash == lastHash || hash == current() {
			continue
		}
		lastHash = hash
		apply(data)
	}
}
