#!/usr/bin/env bash
# scripts/bench/remote-cache.sh: time kiln's remote cache on the copy5k and big200m
# cases against Debian's docker-registry on 127.0.0.1, beside pushing and
# pulling the image itself and beside Buildah's --cache-to/--cache-from, in
# the same run, alternating:
#
#   kiln push IMAGE                         the image, from a warm root
#   kiln cache export registry://REF        that root's cache records + layers
#   kiln pull IMAGE                         into an empty root
#   kiln build --cache-from registry://REF  on an empty root: every step a
#                                           remote hit (checked), base pulled
#   buildah build --layers --cache-to REF   a cold build that exports (and
#                                           the same without, for the cost)
#   buildah build --layers --cache-from REF on empty storage
#
#   scripts/bench/remote-cache.sh                     # 3 runs each, both cases
#   RUNS=5 CASES=big200m scripts/bench/remote-cache.sh
#   SKIP_BUILDAH=1 RUNS=7 scripts/bench/remote-cache.sh   # kiln only
#
# On a machine shared with other work, the minimum of the runs says more
# than the median: both are printed.
#
# Each run starts a registry afresh on empty storage, so no blob is there
# already. Buildah runs with --network none and its own storage, config and
# registries.conf under $WORK (default /tmp/kiln-bench-remote-cache).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SHARED=${SHARED:-$REPO/../shared}
WORK=${WORK:-/tmp/kiln-bench-remote-cache}
RUNS=${RUNS:-3}
SKIP_BUILDAH=${SKIP_BUILDAH:-}
CASES=${CASES:-copy5k big200m}
export PATH=/usr/local/go/bin:$PATH
for tool in docker-registry buildah curl bc; do
	command -v $tool >/dev/null || { echo "scripts/bench/remote-cache.sh: $tool is not installed" >&2; exit 1; }
done

cleanup_mounts() { awk -v r="$WORK/" 'index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r umount -l 2>/dev/null || true; }
cleanup_mounts
rm -rf "$WORK" && mkdir -p "$WORK"
KILN=$WORK/kiln
(cd "$REPO" && CGO_ENABLED=0 go build -o "$KILN" ./cmd/kiln)
export DOCKER_CONFIG=$WORK/docker # no credentials: an anonymous local registry
"$REPO/scripts/busybox-rootfs.sh" "$WORK/busybox-rootfs" >/dev/null

# shellcheck source=scripts/bench/registry.sh
. "$HERE/registry.sh"
BASE=$HOST/busybox:latest

# Buildah: its own storage, registries.conf (the registry is insecure) and
# containers.conf (netavark's config dir under $WORK).
BROOT=$WORK/buildah/root BRUNROOT=$WORK/buildah/runroot
mkdir -p "$BROOT" "$BRUNROOT" "$WORK/containers/networks"
printf 'unqualified-search-registries = []\n[[registry]]\nlocation = "%s"\ninsecure = true\n' "$HOST" >"$WORK/registries.conf"
printf '[network]\nnetwork_config_dir = "%s"\n' "$WORK/containers/networks" >"$WORK/containers.conf"
export CONTAINERS_CONF=$WORK/containers.conf
bh() { buildah --root "$BROOT" --runroot "$BRUNROOT" --storage-driver overlay --registries-conf "$WORK/registries.conf" "$@"; }
# bb CMD...: buildah build with the harness's runc mode (crun refuses this
# host's hybrid cgroups).
bb() { bh build --layers --isolation oci --runtime runc --network none "$@" 1>&2; }
bh_reset() { bh rm -a >/dev/null 2>&1 || true; bh rmi -a -f >/dev/null 2>&1 || true; }

trap 'stop_registry; bh_reset; cleanup_mounts' EXIT

minimum() { printf '%s\n' "$@" | sort -n | head -1; }
# row CASE LABEL TIMES...: the median, the minimum and every run.
row() { local c=$1 l=$2; shift 2; printf '%-8s %-46s median %6.2fs  min %6.2fs  (%s)\n' "$c" "$l:" "$(median "$@")" "$(minimum "$@")" "$*"; }
# ratio LABEL A B: A's median and minimum over B's (array names).
ratio() {
	local -n a=$2 b=$3
	printf '%-8s %-46s median %6.2f   min %6.2f\n' "" "ratio $1:" "$(echo "$(median "${a[@]}") / $(median "${b[@]}")" | bc -l)" "$(echo "$(minimum "${a[@]}") / $(minimum "${b[@]}")" | bc -l)"
}
fresh_registry() { stop_registry; start_registry; }
# push_base ROOT: put the base in the (fresh) registry.
push_base() { "$KILN" --root "$1" push busybox "$BASE" >/dev/null; }

fresh_registry
result=$WORK/result.txt
echo "kiln $(cd "$REPO" && git rev-parse --short HEAD) on $(nproc) cores, $(date -u +%FT%TZ), docker-registry $(docker-registry --version | awk '{print $3}') on $HOST, $(buildah --version | cut -d' ' -f1-3); $RUNS runs, median (all runs)" | tee "$result"
for c in $CASES; do
	ctx=$WORK/ctx/$c
	mkdir -p "$ctx"
	cp "$HERE/cases/$c/kiln.yml" "$ctx/kiln.yml"
	cp "$SHARED/bench/cases/$c/Dockerfile" "$ctx/Dockerfile"
	if [ -x "$SHARED/bench/cases/$c/gen.sh" ]; then "$SHARED/bench/cases/$c/gen.sh" "$ctx" >/dev/null; fi
	printf 'kiln.yml\nDockerfile\n' >"$ctx/.kilnignore"
	printf 'kiln.yml\nDockerfile\n' >"$ctx/.dockerignore"

	# The warm root: the base, the case built once and tagged.
	W=$WORK/warm-$c
	"$KILN" --root "$W" import "$WORK/busybox-rootfs" -t busybox:latest --cmd /bin/sh >/dev/null
	push_base "$W"
	"$KILN" --root "$W" build --progress plain --set base="$BASE" -t "$HOST/kiln/$c:1" "$ctx" >/dev/null 2>&1

	declare -a push export pull remote bexport bcold bremote
	push=() export=() pull=() remote=() bexport=() bcold=() bremote=()
	for run in $(seq "$RUNS"); do
		fresh_registry
		push_base "$W"
		push+=("$(seconds "$KILN" --root "$W" push "$HOST/kiln/$c:1")")
		export+=("$(seconds "$KILN" --root "$W" cache export "registry://$HOST/cache/$c:main")")
		E=$WORK/empty && rm -rf "$E"
		pull+=("$(seconds "$KILN" --root "$E" pull "$HOST/kiln/$c:1")")
		rm -rf "$E"
		remote+=("$(seconds "$KILN" --root "$E" build --progress plain --set base="$BASE" --cache-from "registry://$HOST/cache/$c:main" "$ctx")")
		grep -q ' 0 nodes ran' "$WORK/last.err" || { echo "the remote-cached build of $c ran steps:" >&2; cat "$WORK/last.err" >&2; exit 1; }
		rm -rf "$E"
		# Buildah exports its cache while it builds (--cache-to pushes the
		# layers of the steps it runs, not of those it finds in its local
		# cache): a cold build with --cache-to, the same without, then a
		# build on empty storage from that cache.
		[ -n "$SKIP_BUILDAH" ] && continue
		bh_reset
		bexport+=("$(seconds bb --build-arg BASE="$BASE" -t "bench/$c" --cache-to "$HOST/bcache/$c" -f "$ctx/Dockerfile" "$ctx")")
		bh_reset
		bcold+=("$(seconds bb --build-arg BASE="$BASE" -t "bench/$c" -f "$ctx/Dockerfile" "$ctx")")
		bh_reset
		bremote+=("$(seconds bb --build-arg BASE="$BASE" -t "bench/$c" --cache-from "$HOST/bcache/$c" -f "$ctx/Dockerfile" "$ctx")")
		grep -q 'Using cache' "$WORK/last.err" && bhit=yes || bhit=no
		bh_reset
	done
	{
		row "$c" "kiln push IMAGE (warm root)" "${push[@]}"
		row "$c" "kiln cache export registry:// (warm root)" "${export[@]}"
		ratio "export/push" export push
		row "$c" "kiln pull IMAGE (empty root)" "${pull[@]}"
		row "$c" "kiln build --cache-from (empty root, all hits)" "${remote[@]}"
		ratio "remote build/pull" remote pull
		if [ -z "$SKIP_BUILDAH" ]; then
			row "$c" "buildah build --cache-to (cold)" "${bexport[@]}"
			row "$c" "buildah build (cold, no --cache-to)" "${bcold[@]}"
			row "$c" "buildah build --cache-from (empty storage)" "${bremote[@]}"
			echo "$c  buildah's last --cache-from build used the cache: $bhit"
		fi
	} | tee -a "$result"
done
