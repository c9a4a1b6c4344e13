#!/usr/bin/env bash
# bench/run.sh: time kiln on the peer harness's cases (kiln-format
# equivalents in bench/cases), cold and warm, with hyperfine; optionally run
# ../shared/bench/peer-buildah.sh in the same session to compare.
#
#   bench/run.sh                 # kiln only
#   PEER=1 bench/run.sh          # kiln, then Buildah (about 2.5 min more)
#   CASES="chain10 copy5k" RUNS=10 bench/run.sh
#
# Everything goes under $WORK (default /tmp/kiln-bench). Results:
# $WORK/results/kiln-<time>.txt and hyperfine JSON next to it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$REPO/../shared}
WORK=${WORK:-/tmp/kiln-bench}
CASES=${CASES:-chain10 copy5k big200m multistage}
RUNS=${RUNS:-5}
export PATH=/usr/local/go/bin:$PATH

command -v hyperfine >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null; }
mkdir -p "$WORK/results"
KILN=$WORK/kiln
(cd "$REPO" && CGO_ENABLED=0 go build -o "$KILN" ./cmd/kiln)
ROOT=$WORK/root
BASE_ROOTFS=$WORK/busybox-rootfs
"$REPO/scripts/busybox-rootfs.sh" "$BASE_ROOTFS"

# The base image lives in a template root; each cold run starts from a copy
# of it (the base present, nothing else cached), as the harness's cold
# Buildah runs start with the base pulled.
TEMPLATE=$WORK/template-root
rm -rf "$TEMPLATE"
"$KILN" --root "$TEMPLATE" import "$BASE_ROOTFS" -t busybox:latest --cmd /bin/sh >/dev/null
"$KILN" --root "$TEMPLATE" run busybox -- true # unpack the base layer once

for c in $CASES; do
	ctx=$WORK/ctx/$c
	mkdir -p "$ctx"
	cp "$HERE/cases/$c/kiln.yml" "$ctx/kiln.yml"
	if [ -x "$SHARED/bench/cases/$c/gen.sh" ]; then "$SHARED/bench/cases/$c/gen.sh" "$ctx"; fi
done

stamp=$(date +%Y%m%d-%H%M%S)
out=$WORK/results/kiln-$stamp.txt
build() { echo "$KILN --root $ROOT build --progress plain --set base=busybox:latest -f $WORK/ctx/$1/kiln.yml $WORK/ctx/$1"; }
{
	echo "kiln $(cd "$REPO" && git rev-parse --short HEAD) on $(nproc) cores, $(date -u +%FT%TZ)"
	for c in $CASES; do
		hyperfine -N --runs "$RUNS" --export-json "$WORK/results/kiln-$stamp-$c-cold.json" \
			--prepare "sh -c 'rm -rf $ROOT && cp -a $TEMPLATE $ROOT'" -n "kiln $c cold" "$(build "$c")" 2>/dev/null |
			grep -E 'Time|±' | head -1 | sed "s/^/$c cold: /"
		hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$WORK/results/kiln-$stamp-$c-warm.json" \
			-n "kiln $c warm" "$(build "$c")" 2>/dev/null | grep -E 'Time|±' | head -1 | sed "s/^/$c warm: /"
	done
	# Peak memory of a cold copy5k build.
	if [[ " $CASES " == *" copy5k "* ]]; then
		rm -rf "$ROOT" && cp -a "$TEMPLATE" "$ROOT"
		/usr/bin/time -f "copy5k cold peak RSS: %M KiB" $(build copy5k) >/dev/null 2>"$WORK/results/rss.txt" || true
		grep 'peak RSS' "$WORK/results/rss.txt"
	fi
} | tee "$out"

if [ "${PEER:-0}" = 1 ]; then
	WORK=$WORK/peer "$SHARED/bench/peer-buildah.sh" | tee -a "$out"
	# The harness leaves the registry it started running: stop it.
	WORK=$WORK/peer "$SHARED/bench/setup.sh" --stop-registry --no-install || true
fi
echo "results: $out"
