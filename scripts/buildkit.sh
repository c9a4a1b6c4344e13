#!/usr/bin/env bash
# buildkit.sh: BuildKit (buildkitd and buildctl) as kiln's reference
# Dockerfile builder, built offline-capable from the Go module proxy and
# cached, so that a second run is instant. Derived from
# ../shared/bench/buildkit.sh; a plain `go install …@version` is refused
# because BuildKit's go.mod has exclude directives, so the module is
# downloaded, copied and built in its own module.
#
#   scripts/buildkit.sh build   # build once into $KILN_BUILDKIT_DIR/<version>/bin,
#                               # install runc if missing; prints the bin dir
#   scripts/buildkit.sh bin     # prints the bin dir, exit 1 when not built
#
# KILN_BUILDKIT_DIR: the cache (default /var/cache/kiln-buildkit when it
# can be written, else ${XDG_CACHE_HOME:-$HOME/.cache}/kiln-buildkit).
# BK_VERSION: the BuildKit module version (default: the one kiln's go.mod
# requires for the Dockerfile parser, so that both read Dockerfiles alike).
#
# The differential test (cmd/kiln/buildkit_diff_test.go) starts its own
# buildkitd with a private root and socket; nothing here runs a daemon.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
here=$(cd "$(dirname "$0")/.." && pwd)
BK_VERSION=${BK_VERSION:-$(cd "$here" && go list -m -f '{{.Version}}' github.com/moby/buildkit)}
if [ -z "${KILN_BUILDKIT_DIR:-}" ]; then
	if mkdir -p /var/cache/kiln-buildkit 2>/dev/null && [ -w /var/cache/kiln-buildkit ]; then
		KILN_BUILDKIT_DIR=/var/cache/kiln-buildkit
	else
		KILN_BUILDKIT_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/kiln-buildkit
	fi
fi
bin=$KILN_BUILDKIT_DIR/$BK_VERSION/bin

built() { [ -x "$bin/buildkitd" ] && [ -x "$bin/buildctl" ]; }

case "${1:-}" in
build)
	if ! command -v runc >/dev/null; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null
	fi
	if built; then
		echo "$bin"
		exit 0
	fi
	mkdir -p "$KILN_BUILDKIT_DIR"
	dir=$(cd "$KILN_BUILDKIT_DIR" && go mod download -json "github.com/moby/buildkit@$BK_VERSION" |
		sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	[ -d "$dir" ] || { echo "buildkit.sh: cannot download github.com/moby/buildkit@$BK_VERSION" >&2; exit 1; }
	src=$(mktemp -d "$KILN_BUILDKIT_DIR/src.XXXXXX")
	trap 'rm -rf "$src"' EXIT
	cp -r "$dir/." "$src"
	chmod -R u+w "$src"
	mkdir -p "$bin.tmp"
	(cd "$src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -o "$bin.tmp/" ./cmd/buildkitd ./cmd/buildctl)
	# Renamed whole, so that an interrupted build leaves no half cache.
	rm -rf "$bin"
	mv "$bin.tmp" "$bin"
	echo "$bin"
	;;
bin)
	built || { echo "buildkit.sh: BuildKit $BK_VERSION is not built: run scripts/buildkit.sh build" >&2; exit 1; }
	echo "$bin"
	;;
*)
	echo "usage: buildkit.sh build|bin" >&2
	exit 2
	;;
esac
