// Package buildinfo names the version of the running binary from what the
// Go toolchain recorded in it (runtime/debug.ReadBuildInfo): the main
// module's version — a release tag, or the pseudo-version go build derives
// from the commit, with +dirty for uncommitted changes — else the commit
// itself, else "(devel)". Nothing to stamp by hand, so it cannot go stale.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// Devel is the version of a binary built without module or VCS information
// (go run, go test).
const Devel = "(devel)"

var version = sync.OnceValue(func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return Devel
	}
	return fromInfo(info)
})

// Version returns the running binary's version.
func Version() string { return version() }

func fromInfo(info *debug.BuildInfo) string {
	if v := info.Main.Version; v != "" && v != Devel {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return Devel
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += "+dirty"
	}
	return rev
}
