package policyfile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/polltest"
)

// TestWatchHandsOverEachNewDocumentOnce: a changed file is handed over once;
// rewriting the same bytes, a missing file and the policy already in force
// hand nothing over; a document apply refused is not offered again until
// the file changes.
func TestWatchHandsOverEachNewDocumentOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(s string) {
		t.Helper()
		// Through a rename, as editors and ConfigMaps replace files.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	write("v1")
	var mu sync.Mutex
	inForce := hash("v1")
	var got []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, path, time.Millisecond,
			func() string { mu.Lock(); defer mu.Unlock(); return inForce },
			func(data []byte) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, string(data))
				if !strings.HasPrefix(string(data), "bad") {
					inForce = hash(string(data))
				}
			})
	}()
	defer func() { cancel(); <-done }()
	seen := func(want ...string) {
		t.Helper()
		if !polltest.Until(10*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return strings.Join(got, ",") == strings.Join(want, ",")
		}) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("handed over %q, want %q", got, want)
		}
	}
	// Each document has its own size: a change must not hide behind a
	// file system's coarse modification times.
	write("v22")
	seen("v22")
	write("bad one")
	seen("v22", "bad one")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	write("v22") // the policy in force: nothing to do
	write("bad one")
	write("v3333")
	seen("v22", "bad one", "v3333")
}

// TestReadIsBounded: a document over MaxFileBytes is refused.
func TestReadIsBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, make([]byte, MaxFileBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Read of %d bytes: %v", MaxFileBytes+1, err)
	}
}
