#!/usr/bin/env bash
# The Traefik plugin's tests (make traefik):
#  1. its own module, compiled: go vet and go test -race;
#  2. its own module, interpreted: `yaegi test`, the convention of Traefik's
#     plugin template, with the yaegi command at Traefik's pinned v0.16.1
#     built from the Go module proxy, and the plugin laid out in a GOPATH as
#     Traefik lays out plugins-local/src/<module>;
#  3. internal/traefikload: the conformance suite, 64 concurrent clients,
#     streaming and errors through Traefik's own loader, with -race; the
#     conformance case count is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
plugin=plugins/traefik
module=github.com/contentguard/contentguard/plugins/traefik

(cd "$plugin" && "$GO" vet ./... && "$GO" test -race -count=1 ./...)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
GOBIN="$work/bin" GOFLAGS=-mod=mod "$GO" install github.com/traefik/yaegi/cmd/yaegi@v0.16.1
mkdir -p "$work/gopath/src/$(dirname "$module")"
cp -r "$plugin" "$work/gopath/src/$module"
(cd "$work/gopath" && GOPATH="$work/gopath" "$work/bin/yaegi" test "$module")
echo "ok  	$module (yaegi test, Yaegi v0.16.1)"

log="$work/traefikload.log"
status=0
"$GO" test -race -count=1 -timeout 20m -v ./internal/traefikload >"$log" 2>&1 || status=$?
grep -E '^(ok|FAIL|--- FAIL)|conformance: [0-9]+ cases' "$log" || true
if [ "$status" -ne 0 ]; then
  cat "$log"
fi
exit "$status"
