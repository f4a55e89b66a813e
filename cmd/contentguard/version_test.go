package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/contentguard/contentguard/internal/buildinfo"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
	binaryDir  string
)

// buildBinary builds contentguard once per test process, as a user's go
// build would (GOFLAGS=-buildvcs=auto whatever the machine's go env says,
// so a clone's commit is recorded), and returns its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		if binaryDir, binaryErr = os.MkdirTemp("", "cg-bin-"); binaryErr != nil {
			return
		}
		binaryPath = filepath.Join(binaryDir, "contentguard")
		build := exec.Command("go", "build", "-o", binaryPath, ".")
		build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=auto")
		out, err := build.CombinedOutput()
		if err != nil {
			binaryErr = err
			binaryPath = string(out)
		}
	})
	if binaryErr != nil {
		t.Fatalf("go build: %v\n%s", binaryErr, binaryPath)
	}
	return binaryPath
}

// TestVersionFromBuildInfo: contentguard --version (and version) print the
// main module's version as the toolchain recorded it in the binary — what
// `go version -m` reads — not a string stamped by hand.
func TestVersionFromBuildInfo(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	recorded := ""
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "mod" && f[1] == "github.com/contentguard/contentguard" {
			recorded = f[2]
		}
	}
	if recorded == "" {
		t.Fatalf("go version -m shows no main module:\n%s", out)
	}
	want := recorded
	if recorded == buildinfo.Devel {
		// Built without VCS information (no git): the commit, if any
		// setting names it, else (devel).
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision=") {
				want = strings.TrimPrefix(f[1], "vcs.revision=")[:12]
			}
		}
	}
	t.Logf("go version -m: %s, expecting %s", recorded, want)
	for _, args := range [][]string{{"--version"}, {"version"}} {
		got, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if strings.TrimSpace(string(got)) != "contentguard "+want {
			t.Errorf("%v printed %q, want %q (go version -m: %s)", args, got, "contentguard "+want, recorded)
		}
	}
	if code, out, _ := runCLI(t, "--version"); code != 0 || strings.TrimSpace(out) != "contentguard "+buildinfo.Version() {
		t.Errorf("in process: %d %q", code, out)
	}
}
