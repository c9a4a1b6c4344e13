#!/usr/bin/env bash
# scripts/bench/compare.sh: kiln beside BuildKit and Buildah, in one run, on
# the rows of issue 17, offline. For each row, each run times every builder
# in turn (kiln, BuildKit, Buildah: interleaved, so that a burst of load
# on this shared machine hits all of them), then prints the median and
# the min..max of each as a markdown table, also written with the raw
# times as JSON. See scripts/bench/README.md.
#
#   scripts/bench/compare.sh                             # every row, 3 runs
#   ROWS="chain-cold chain-cached" CHAINS="10 100" scripts/bench/compare.sh
#   PEERS=buildkit RUNS=5 ROWS=big200m-cold scripts/bench/compare.sh
#   RUNS=1 CHAINS=2 ROWS="chain-cold chain-cached" STRICT=1 scripts/bench/compare.sh  # make bench-smoke
#
# Knobs (environment): ROWS (default: all, in this order) chain-cold
# chain-cached copy5k-cold copy5k-warm copy5k-changed copy50k-cold
# big200m-cold big200m-export remote-hit run-true out1g, or one chainN-cold
# or chainN-cached; CHAINS (N of the chain-cold and chain-cached rows,
# default "10 50 100 500"); RUNS (3); RUNS_DEEP (runs of the chain rows
# past 100 steps, default RUNS); RUNS_CALL (runs of
# run-true, 20); OUTPUT_MIB (out1g's output, 1024); PEERS ("buildkit
# buildah"; a peer that is not built or installed is reported n/a);
# TIMEOUT (seconds one build may take, 900); KILN_BIN (a kiln binary,
# default: built from this tree); KILN_FLAGS (added to every kiln build);
# WORK (/tmp/kiln-compare); STRICT=1 (exit 1 when a cell failed or a row
# has no kiln time); SETTLE=0 (do not sync(1) the disk, untimed, before
# each timed build, nor wait in SETTLE_ROWS, default "copy5k-cold
# copy5k-changed copy50k-cold", until RECENT (61) seconds have passed
# since Buildah, which deletes thousands of files as it builds, ran: see
# settle below).
#
# Cold: before each cold run every builder's previous state is moved
# aside, not deleted (files made right after an rm -rf of a big tree are
# ~3x slower on this ext4: the kernel skips recently freed inodes), and
# the base is present in each (kiln: imported and unpacked; BuildKit: a
# fresh buildkitd whose root has pulled and run the base; Buildah: pulled).
# The moved-aside state is deleted at the end.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# The shared peer harness (../shared/bench): beside the repository, or
# beside the directory of worktrees it is in.
if [ -z "${SHARED:-}" ]; then
	SHARED=$REPO/../shared
	[ -d "$SHARED/bench" ] || SHARED=$REPO/../../shared
fi
[ -x "$SHARED/bench/setup.sh" ] || { echo "compare.sh: no peer harness in $SHARED/bench (set SHARED)" >&2; exit 2; }
WORK=${WORK:-/tmp/kiln-compare}
ALL_ROWS="chain-cold chain-cached copy5k-cold copy5k-warm copy5k-changed copy50k-cold big200m-cold big200m-export remote-hit run-true out1g"
ROWS=${ROWS:-$ALL_ROWS}
CHAINS=${CHAINS:-10 50 100 500}
RUNS=${RUNS:-3}
RUNS_CALL=${RUNS_CALL:-20}
OUTPUT_MIB=${OUTPUT_MIB:-1024}
PEERS=${PEERS-buildkit buildah}
TIMEOUT=${TIMEOUT:-900}
KILN_FLAGS=${KILN_FLAGS:-}
KILN_COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "${KILN_COMMIT:-unknown}")
STRICT=${STRICT:-0}
SETTLE=${SETTLE:-1}
SETTLE_ROWS=${SETTLE_ROWS-copy5k-cold copy5k-changed copy50k-cold}
RECENT=${RECENT:-61}
export PATH=/usr/local/go/bin:$PATH

RUNS_DEEP=${RUNS_DEEP:-$RUNS}
for r in $ROWS; do
	[[ " $ALL_ROWS " == *" $r "* || $r =~ ^chain[0-9]+-(cold|cached)$ ]] ||
		{ echo "compare.sh: unknown row $r (rows: $ALL_ROWS, or chainN-cold, chainN-cached)" >&2; exit 2; }
done
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
OLD=$WORK/old
BIN=$WORK/bin
CTX=$WORK/ctx
OUT=$WORK/out
mkdir -p "$OLD" "$BIN" "$CTX" "$OUT" "$WORK/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=$WORK/results/compare-$STAMP
LOGS=$RES/logs
mkdir -p "$LOGS"
TSV=$RES/times.tsv
: >"$TSV"
log() { printf 'compare: %s\n' "$*" >&2; }

# ------------------------------------------------------------------ clean-up
umount_under() { # every mount under $1, deepest first
	awk -v r="$1/" 'index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}
aside() { # move $1 (if it exists) into $OLD, never deleting it now
	if [ -e "$1" ]; then mv "$1" "$(mktemp -d -p "$OLD")/"; fi
}
BK_PID=
cleanup() {
	set +e
	declare -F bk_stop >/dev/null && bk_stop
	if [ -n "${BH_RUN_CTR:-}" ]; then bh rm "$BH_RUN_CTR" >/dev/null 2>&1; fi
	[ -f "$WORK/peer/registry/pid" ] && "$SHARED/bench/setup.sh" --work "$WORK/peer" --stop-registry --no-install >/dev/null 2>&1
	umount_under "$WORK"
	rm -rf "$OLD"
}
trap cleanup EXIT

# ------------------------------------------------------------------ setup
# The shared harness's setup: packages, the busybox base (rootfs, OCI
# layout, pushed to docker-registry on 127.0.0.1), a runc/crun bundle of
# the same rootfs, registries.conf and containers.conf for Buildah.
"$SHARED/bench/setup.sh" --work "$WORK/peer" --registry >"$LOGS/setup.log" 2>&1 ||
	{ cat "$LOGS/setup.log" >&2; exit 1; }
# shellcheck disable=SC1091
eval "$(. "$WORK/peer/env.sh" && declare -p REG_PORT REGISTRIES_CONF CONTAINERS_CONF_FILE BUNDLE)"
HOST=127.0.0.1:$REG_PORT
BASE=$HOST/busybox:latest

KILN=$BIN/kiln
if [ -n "${KILN_BIN:-}" ]; then cp "$KILN_BIN" "$KILN"; else (cd "$REPO" && CGO_ENABLED=0 go build -o "$KILN" ./cmd/kiln); fi
# The kiln template root: the same busybox rootfs as the peers' base and
# the bundle, imported and unpacked once; each cold run starts from a copy.
TEMPLATE=$WORK/kiln-template
aside "$TEMPLATE"
"$KILN" --root "$TEMPLATE" import "$WORK/peer/base/rootfs" -t busybox:latest --cmd /bin/sh >/dev/null
"$KILN" --root "$TEMPLATE" run busybox -- true

# Which peers can run here.
declare -A NA=() # tool -> why it cannot run
BK_BINDIR=
if [[ " $PEERS " == *" buildkit "* ]]; then
	if BK_BINDIR=$("$REPO/scripts/buildkit.sh" bin 2>/dev/null); then :; elif [ -x "${BK_DIR_SHARED:-/tmp/kiln-buildkit}/bin/buildkitd" ]; then
		BK_BINDIR=${BK_DIR_SHARED:-/tmp/kiln-buildkit}/bin
	else
		NA[buildkit]="not built (make buildkit, or ../shared/bench/buildkit.sh build)"
	fi
else
	NA[buildkit]="not selected (PEERS)"
fi
if [[ " $PEERS " == *" buildah "* ]]; then
	command -v buildah >/dev/null || NA[buildah]="not installed (apt-get install buildah)"
else
	NA[buildah]="not selected (PEERS)"
fi
TOOLS="kiln buildkit buildah"

# ------------------------------------------------------------------ kiln
KROOT=$WORK/kiln-root
k_fresh() { aside "$KROOT"; cp -a "$TEMPLATE" "$KROOT"; }
k_empty() { aside "$KROOT"; mkdir -p "$KROOT"; }
# k_build CASE [FLAGS...]
# shellcheck disable=SC2086
k_build() { local c=$1; shift; timeout -k 5 "$TIMEOUT" "$KILN" --root "$KROOT" build --progress plain --set base=busybox:latest $KILN_FLAGS "$@" -f "$CTX/$c/kiln.yml" "$CTX/$c"; }

# ------------------------------------------------------------------ BuildKit
# buildkitd is started by ../shared/bench/buildkit.sh (OCI worker, runc,
# overlayfs, a plain-HTTP registry at $HOST) with its root and socket
# under $WORK/buildkit; the binaries are the ones `make buildkit` caches.
# Its step log limits are lifted (by default a step's log is clipped at
# 2 MiB and throttled), so that out1g's output all reaches buildctl, as
# it reaches kiln's and Buildah's output.
export BUILDKIT_STEP_LOG_MAX_SIZE=-1 BUILDKIT_STEP_LOG_MAX_SPEED=-1
BK_DIR=$WORK/buildkit
BKSOCK=unix://$BK_DIR/bk.sock
bk_start() {
	mkdir -p "$BK_DIR/bin"
	ln -sf "$BK_BINDIR/buildkitd" "$BK_DIR/bin/buildkitd"
	ln -sf "$BK_BINDIR/buildctl" "$BK_DIR/bin/buildctl"
	BK_DIR=$BK_DIR "$SHARED/bench/buildkit.sh" start "$REG_PORT"
	BK_PID=$(cat "$BK_DIR/bk.pid")
}
bk_stop() {
	[ -n "$BK_PID" ] || return 0
	BK_DIR=$BK_DIR "$SHARED/bench/buildkit.sh" stop
	for _ in $(seq 200); do [ -d "/proc/$BK_PID" ] || break; sleep 0.05; done
	BK_PID=
	umount_under "$BK_DIR/root"
}
bk() { timeout -k 5 "$TIMEOUT" "$BK_DIR/bin/buildctl" --addr "$BKSOCK" "$@"; }
# bk_build CASE [FLAGS...]: the dockerfile frontend built into buildkitd
# (its default frontend image cannot be pulled offline).
bk_build() {
	local c=$1; shift
	bk build --progress plain --frontend dockerfile.v0 --local "context=$CTX/$c" --local "dockerfile=$CTX/$c" \
		--opt "build-arg:BASE=$BASE" "$@"
}
bk_empty() { bk_stop; aside "$BK_DIR/root"; bk_start; }
# A fresh root that has pulled the base and run a container on it.
bk_fresh() { bk_empty && bk_build prewarm >"$LOGS/bk-prewarm.log" 2>&1; }

# ------------------------------------------------------------------ Buildah
# Its own storage under $WORK, the shared harness's registries.conf and
# containers.conf, runc (crun refuses this host's hybrid cgroups), and
# always --network none.
BHROOT=$WORK/buildah/root
BHRUNROOT=$WORK/buildah/runroot
export CONTAINERS_CONF=$CONTAINERS_CONF_FILE
bh() { buildah --root "$BHROOT" --runroot "$BHRUNROOT" --storage-driver overlay --registries-conf "$REGISTRIES_CONF" "$@"; }
bh_empty() {
	bh rm -a >/dev/null 2>&1 || true
	umount_under "$WORK/buildah"
	aside "$WORK/buildah"
	mkdir -p "$BHROOT" "$BHRUNROOT"
}
bh_fresh() { bh_empty && bh pull --quiet "$BASE" >/dev/null; }
# bh_build CASE [FLAGS...]
bh_build() {
	local c=$1; shift
	timeout -k 5 "$TIMEOUT" buildah --root "$BHROOT" --runroot "$BHRUNROOT" --storage-driver overlay \
		--registries-conf "$REGISTRIES_CONF" build --layers --pull=false --isolation oci --runtime runc \
		--network none --build-arg "BASE=$BASE" "$@" -t "bench/$c:latest" -f "$CTX/$c/Dockerfile" "$CTX/$c"
}

# ------------------------------------------------------------------ contexts
IGNORE=$'kiln.yml\nDockerfile\n.gen-v1\n.kilnignore\n.dockerignore\n'
ctx_case() { # CASE: the kiln.yml and Dockerfile of scripts/bench/cases (the generator's data)
	local c=$1 d=$CTX/$1
	mkdir -p "$d"
	cp "$HERE/cases/$c/kiln.yml" "$d/kiln.yml"
	if [ -f "$HERE/cases/$c/Dockerfile" ]; then cp "$HERE/cases/$c/Dockerfile" "$d/Dockerfile"; else cp "$SHARED/bench/cases/$c/Dockerfile" "$d/Dockerfile"; fi
	local g=$HERE/cases/$c/gen.sh
	[ -x "$g" ] || g=$SHARED/bench/cases/$c/gen.sh
	if [ -x "$g" ]; then "$g" "$d" >/dev/null; fi
	printf '%s' "$IGNORE" >"$d/.kilnignore"
	printf '%s' "$IGNORE" >"$d/.dockerignore"
}
ctx_chain() { # N: N tiny run steps, as chain10
	local n=$1 d=$CTX/chain$1 i
	mkdir -p "$d"
	{
		echo "# chain$n: $n tiny run steps (generated by scripts/bench/compare.sh)"
		echo 'from: "{{ base }}"'
		echo "steps:"
		for i in $(seq -w 1 "$n"); do echo "  - run: echo step$i > /step$i"; done
	} >"$d/kiln.yml"
	{
		echo "# chain$n: $n tiny RUN steps (generated by scripts/bench/compare.sh)"
		echo 'ARG BASE'
		echo 'FROM ${BASE}'
		for i in $(seq -w 1 "$n"); do echo "RUN echo step$i > /step$i"; done
	} >"$d/Dockerfile"
}
ctx_out() { # out1g: one step printing OUTPUT_MIB MiB of 100-byte lines
	local d=$CTX/out1g cmd
	mkdir -p "$d"
	cmd="yes $(printf '%099d' 0) | head -c $((OUTPUT_MIB * 1048576))"
	printf '# out1g: one step printing %s MiB (100-byte lines)\nfrom: "{{ base }}"\nsteps:\n  - run: %s\n' "$OUTPUT_MIB" "$cmd" >"$d/kiln.yml"
	printf '# out1g: one step printing %s MiB (100-byte lines)\nARG BASE\nFROM ${BASE}\nRUN %s\n' "$OUTPUT_MIB" "$cmd" >"$d/Dockerfile"
}
mkdir -p "$CTX/prewarm"
printf 'ARG BASE\nFROM ${BASE}\nRUN true\n' >"$CTX/prewarm/Dockerfile"

# ------------------------------------------------------------------ timing
# record ROW TOOL STATUS TIMES NOTE: one line of $TSV (STATUS ok, fail, n/a)
# and the 1-minute load average when the row started.
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${ROW_LOAD:-}" >>"$TSV"; }
declare -A TIMES=() FAILED=()
# settle KEY: before a timed build, the disk is written back (sync):
# what the builder before it, or a preparation, left dirty is not billed
# to this one (builders run in a fixed order: without it kiln, first in
# each run, paid for the write-back of Buildah's 200 MB). In the rows of
# SETTLE_ROWS, it also waits until RECENT seconds have passed since a
# builder that deletes files when it builds (Buildah: its working
# containers) last ran: on this ext4 (no journal) every file created
# within a minute of the deletion of thousands of others is ~2-3x slower
# to make (the kernel scans past recently freed inodes, see
# recently_deleted() in fs/ext4/ialloc.c), whoever makes it. (Buildah
# itself is not made to wait for its own deletions.)
settle() {
	[ "$SETTLE" = 0 ] && return
	sync
	local row=${1%%|*} wait
	if [ -n "$DELETED_AT" ] && [[ " $SETTLE_ROWS " == *" $row "* && $1 != *"|buildah" ]]; then
		wait=$((DELETED_AT + RECENT - $(date +%s)))
		[ "$wait" -le 0 ] || sleep "$wait"
	fi
}
# deleted KEY: note when a builder that deletes files as it builds ran.
deleted() { [[ "$1" != *"|buildah" ]] || DELETED_AT=$(date +%s); }
DELETED_AT=
# timed KEY CMD...: run CMD (a function or program), its output in
# $LOGS/KEY.log; append its wall time (s) to TIMES[KEY], or mark KEY failed.
timed() {
	local key=$1 t0 t1 rc=0 f; shift
	[ -z "${FAILED[$key]:-}" ] || return 0
	f=$LOGS/${key//|/.}.log
	settle "$key"
	t0=$EPOCHREALTIME
	"$@" >"$f" 2>&1 || rc=$?
	t1=$EPOCHREALTIME
	# out1g's logs hold 1 GiB: keep their last MiB
	if [ "$(stat -c %s "$f")" -gt 16777216 ]; then tail -c 1048576 "$f" >"$f.tail" && mv "$f.tail" "$f"; fi
	deleted "$key"
	if [ "$rc" = 0 ]; then
		TIMES[$key]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }') "
	elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		FAILED[$key]="timed out after ${TIMEOUT}s"
	else
		FAILED[$key]="exit $rc: $(last_line "$f")"
	fi
}
# last_line FILE: its last non-empty line, the end of it when long (where
# the cause usually is).
last_line() {
	local l
	l=$(grep -v '^\s*$' "$1" | tail -1 | tr -d '|')
	[ "${#l}" -le 200 ] || l="…${l: -200}"
	printf '%s' "$l"
}
# untimed KEY CMD...: a preparation; when it fails the cell fails.
untimed() {
	local key=$1 rc=0 f; shift
	[ -z "${FAILED[$key]:-}" ] || return 0
	f=$LOGS/${key//|/.}.prep.log
	"$@" >>"$f" 2>&1 || rc=$?
	deleted "$key"
	[ "$rc" = 0 ] || FAILED[$key]="preparation failed (exit $rc): $(last_line "$f")"
}
# check KEY PATTERN WHAT: the last run's log must match PATTERN (e.g. all cache hits)
check() {
	local key=$1
	[ -z "${FAILED[$key]:-}" ] || return 0
	grep -Eq "$2" "$LOGS/${key//|/.}.log" || FAILED[$key]="$3 (see logs/${key//|/.}.log)"
}
# finish ROW TOOL [NOTE]: record the cell
finish() {
	local key="$1|$2"
	if [ -n "${NA[$2]:-}" ]; then record "$1" "$2" n/a "" "${NA[$2]}"
	elif [ -n "${FAILED[$key]:-}" ]; then record "$1" "$2" fail "${TIMES[$key]:-}" "${FAILED[$key]}"
	else record "$1" "$2" ok "${TIMES[$key]:-}" "${3:-}"; fi
}
runs_of() { [ -z "${NA[$1]:-}" ]; }

# ------------------------------------------------------------------ rows
# cold ROW CASE: each run, each builder from fresh state (base present).
cold() {
	local row=$1 c=$2 run t
	for run in $(seq "$RUNS"); do
		log "$row run $run/$RUNS"
		runs_of kiln && { k_fresh; timed "$row|kiln" k_build "$c"; }
		runs_of buildkit && { untimed "$row|buildkit" bk_fresh; timed "$row|buildkit" bk_build "$c"; }
		runs_of buildah && { untimed "$row|buildah" bh_fresh; timed "$row|buildah" bh_build "$c"; }
	done
	for t in $TOOLS; do finish "$row" "$t"; done
}
# cached ROW CASE: every step a cache hit (one untimed build first).
cached() {
	local row=$1 c=$2 run t
	runs_of kiln && untimed "$row|kiln" k_build "$c"
	runs_of buildkit && untimed "$row|buildkit" bk_build "$c"
	runs_of buildah && untimed "$row|buildah" bh_build "$c"
	for run in $(seq "$RUNS"); do
		log "$row run $run/$RUNS"
		runs_of kiln && timed "$row|kiln" k_build "$c"
		runs_of buildkit && timed "$row|buildkit" bk_build "$c"
		runs_of buildah && timed "$row|buildah" bh_build "$c"
	done
	check "$row|kiln" ' 0 nodes ran' "kiln ran steps"
	check "$row|buildkit" 'CACHED' "BuildKit printed no CACHED step"
	check "$row|buildah" 'Using cache' "Buildah printed no 'Using cache'"
	for t in $TOOLS; do finish "$row" "$t"; done
}
# Each builder's state is left as the last row left it; a cached row
# after a cold row of the same case starts from that row's cache.
# chain_row N KIND: chainN-cold or chainN-cached, RUNS_DEEP runs past 100 steps.
chain_row() {
	local RUNS=$RUNS
	[ "$1" -le 100 ] || RUNS=$RUNS_DEEP
	ROW_LOAD=$(cut -d' ' -f1 /proc/loadavg)
	ctx_chain "$1"
	"$2" "chain$1-$2" "chain$1"
}
row_chain_cold() { local n; for n in $CHAINS; do chain_row "$n" cold; done; }
row_chain_cached() { local n; for n in $CHAINS; do chain_row "$n" cached; done; }
row_copy5k_cold() { ctx_case copy5k; cold copy5k-cold copy5k; }
row_copy5k_warm() { ctx_case copy5k; cached copy5k-warm copy5k; }
# copy5k-changed: each run changes one of the 5,000 files (new content,
# the same for each builder), on a cache that holds the previous content.
row_copy5k_changed() {
	local row=copy5k-changed f=$CTX/copy5k/files/d00/f0000.txt run t orig
	ctx_case copy5k
	orig=$(mktemp -p "$WORK")
	cp -p "$f" "$orig"
	runs_of kiln && untimed "$row|kiln" k_build copy5k
	runs_of buildkit && untimed "$row|buildkit" bk_build copy5k
	runs_of buildah && untimed "$row|buildah" bh_build copy5k
	for run in $(seq "$RUNS"); do
		log "$row run $run/$RUNS"
		printf 'changed %s %s\n' "$STAMP" "$run" >>"$f"
		runs_of kiln && timed "$row|kiln" k_build copy5k
		runs_of buildkit && timed "$row|buildkit" bk_build copy5k
		runs_of buildah && timed "$row|buildah" bh_build copy5k
	done
	cp -p "$orig" "$f" && rm -f "$orig"
	for t in $TOOLS; do finish "$row" "$t"; done
}
row_copy50k_cold() { ctx_case copy50k; cold copy50k-cold copy50k; }
row_big200m_cold() { ctx_case big200m; cold big200m-cold big200m; }
# big200m-export: a cold build that writes the image as an OCI layout tar
# (Buildah: the build, then buildah push oci-archive:, in one timed command).
k_export() { aside "$OUT/kiln.tar"; k_build big200m -o "type=oci,dest=$OUT/kiln.tar"; }
bk_export() { aside "$OUT/buildkit.tar"; bk_build big200m --output "type=oci,dest=$OUT/buildkit.tar"; }
bh_export() { aside "$OUT/buildah.tar"; bh_build big200m && timeout -k 5 "$TIMEOUT" buildah --root "$BHROOT" --runroot "$BHRUNROOT" --storage-driver overlay push --quiet bench/big200m:latest "oci-archive:$OUT/buildah.tar:latest"; }
row_big200m_export() {
	local row=big200m-export run t
	ctx_case big200m
	for run in $(seq "$RUNS"); do
		log "$row run $run/$RUNS"
		runs_of kiln && { k_fresh; timed "$row|kiln" k_export; }
		runs_of buildkit && { untimed "$row|buildkit" bk_fresh; timed "$row|buildkit" bk_export; }
		runs_of buildah && { untimed "$row|buildah" bh_fresh; timed "$row|buildah" bh_export; }
	done
	for t in $TOOLS; do finish "$row" "$t" "OCI layout tar"; done
}
# remote-hit: big200m built once with its cache exported to the registry,
# then, each run, an all-hit build from that cache into an empty root
# (nothing local, the base pulled too), without output.
row_remote_hit() {
	local row=remote-hit run t
	ctx_case big200m
	if runs_of kiln; then
		k_empty
		untimed "$row|kiln" k_build big200m --set "base=$BASE" --cache-to "registry://$HOST/cache/kiln-big200m:main,mode=max"
	fi
	if runs_of buildkit; then
		untimed "$row|buildkit" bk_empty
		untimed "$row|buildkit" bk_build big200m --export-cache "type=registry,ref=$HOST/cache/buildkit-big200m:main,mode=max"
	fi
	if runs_of buildah; then
		bh_empty
		untimed "$row|buildah" bh_build big200m --cache-to "$HOST/cache/buildah-big200m"
	fi
	for run in $(seq "$RUNS"); do
		log "$row run $run/$RUNS"
		runs_of kiln && { k_empty; timed "$row|kiln" k_build big200m --set "base=$BASE" --cache-from "registry://$HOST/cache/kiln-big200m:main"; }
		runs_of buildkit && { untimed "$row|buildkit" bk_empty; timed "$row|buildkit" bk_build big200m --import-cache "type=registry,ref=$HOST/cache/buildkit-big200m:main"; }
		runs_of buildah && { bh_empty; timed "$row|buildah" bh_build big200m --cache-from "$HOST/cache/buildah-big200m"; }
	done
	check "$row|kiln" ' 0 nodes ran' "kiln ran steps"
	check "$row|buildkit" 'CACHED' "BuildKit printed no CACHED step"
	check "$row|buildah" 'Using cache' "Buildah printed no 'Using cache'"
	for t in $TOOLS; do finish "$row" "$t" "big200m, --cache-from the registry, empty root"; done
}
# run-true: kiln run true against crun run and runc run of the bundle of
# the same rootfs (pid, net, ipc, uts, mount namespaces), and buildah run
# on one working container. crun refuses this host's hybrid cgroups, so
# it runs in a mount namespace without the cgroup2 mount (nocg2), which
# it enters before the clock starts.
cat >"$BIN/nocg2" <<'EOF'
#!/bin/sh
if [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ] && mountpoint -q /sys/fs/cgroup/unified; then
  exec unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec "$@"' nocg2 "$@"
fi
exec "$@"
EOF
cat >"$BIN/time1" <<'EOF'
#!/bin/bash
# time1 CMD...: CMD's wall time in seconds on stdout (its output discarded)
t0=$EPOCHREALTIME; "$@" >/dev/null 2>&1 || exit; t1=$EPOCHREALTIME
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.5f\n", b - a }'
EOF
chmod +x "$BIN/nocg2" "$BIN/time1"
row_run_true() {
	local row=run-true run t x
	k_fresh
	"$KILN" --root "$KROOT" run busybox -- true >/dev/null 2>&1 || true
	if runs_of buildah; then
		bh_fresh
		BH_RUN_CTR=$(bh from --pull=false --quiet "$BASE")
		bh run --isolation oci --runtime runc --network none "$BH_RUN_CTR" true >/dev/null 2>&1 || true
	fi
	runc delete -f cmp-runc >/dev/null 2>&1 || true
	crun delete -f cmp-crun >/dev/null 2>&1 || true
	for run in $(seq "$RUNS_CALL"); do
		timed "$row|kiln" "$KILN" --root "$KROOT" run busybox -- true
		runs_of buildah && timed "$row|buildah" bh run --isolation oci --runtime runc --network none "$BH_RUN_CTR" true
		for t in crun runc; do
			settle "$row|$t"
			if x=$("$BIN/nocg2" "$BIN/time1" "$t" run -b "$BUNDLE" "cmp-$t"); then TIMES["$row|$t"]+="$x "; else FAILED["$row|$t"]="$t run failed"; fi
		done
	done
	finish "$row" kiln "kiln run busybox -- true"
	if runs_of buildkit; then record "$row" buildkit n/a "" "no command runs one container; its runtime is runc"; else finish "$row" buildkit; fi
	finish "$row" buildah "buildah run CTR true"
	finish "$row" crun "crun run of the bundle (outside the cgroup2 mount)"
	finish "$row" runc "runc run of the bundle"
	if [ -n "${BH_RUN_CTR:-}" ]; then bh rm "$BH_RUN_CTR" >/dev/null 2>&1 || true; BH_RUN_CTR=; fi
}
row_out1g() {
	ctx_out
	cold out1g out1g
}

# ------------------------------------------------------------------ report
# report: the markdown table and the JSON, from $TSV.
report() {
	jq -Rn --arg date "$(date -u +%FT%TZ)" --arg kiln "$KILN_COMMIT" \
		--arg load_start "$LOAD_START" --arg load_end "$(cut -d' ' -f1-3 /proc/loadavg)" \
		--arg versions "$VERSIONS" --argjson runs "$RUNS" '
		def med: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
		{date: $date, kiln: $kiln, versions: $versions, runs: $runs, loadavg_start: $load_start, loadavg_end: $load_end,
		 cells: [inputs | split("\t") | {row: .[0], tool: .[1], status: .[2],
			times: (.[3] | split(" ") | map(select(. != "") | tonumber)), note: .[4], load: .[5]}
			| . + {median: (.times | med), min: (.times | min), max: (.times | max),
			       steps: ((.row | capture("^chain(?<n>[0-9]+)-") | .n | tonumber)? // null)}]}' <"$TSV" >"$RES/results.json"
	jq -r '
		def fmt: if . == null then "" elif . < 1 then "\(. * 1000 | . * 10 | round / 10) ms" else "\(. * 100 | round / 100) s" end;
		def cell: if .status == "n/a" then "n/a (\(.note))"
			elif .status == "fail" then "**failed**: \(.note)" + (if (.times | length) > 0 then " (\(.times | length) runs ok: \(.median | fmt))" else "" end)
			else "\(.median | fmt) [\(.min | fmt)..\(.max | fmt)]" + (if .steps then " · \(.median / .steps * 1000 | . * 100 | round / 100) ms/step" else "" end) end;
		"| row | kiln | BuildKit | Buildah | crun | runc | load |", "|---|---|---|---|---|---|---|",
		(.cells | group_by(.row) | .[] as $g
			| ($g | map({(.tool): (. | cell)}) | add) as $c
			| "| \($g[0].row) | \($c.kiln // "") | \($c.buildkit // "") | \($c.buildah // "") | \($c.crun // "–") | \($c.runc // "–") | \($g[0].load) |")' \
		"$RES/results.json" >"$RES/table.unsorted"
	# keep the rows in the order they ran
	{
		head -2 "$RES/table.unsorted"
		cut -f1 "$TSV" | awk '!seen[$0]++' | while read -r r; do grep -F "| $r |" "$RES/table.unsorted" | head -1; done
		echo
		echo "median [min..max] of $RUNS runs each ($RUNS_DEEP for chains past 100 steps, $RUNS_CALL for run-true), builders interleaved per run; kiln $KILN_COMMIT; $VERSIONS"
		echo "load: the 1-minute load average when the row started; load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $(date -u +%FT%TZ)"
	} >"$RES/table.md"
	rm -f "$RES/table.unsorted"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
VERSIONS="buildkit $( { [ -n "$BK_BINDIR" ] && basename "$(dirname "$BK_BINDIR")"; } || echo -), $(buildah --version 2>/dev/null | cut -d' ' -f1-3 || echo 'buildah -'), $(crun --version | head -1), $(runc --version | head -1)"
log "results in $RES; load average $LOAD_START"
if runs_of buildkit; then bk_start; fi
if runs_of buildah; then bh_fresh; fi
for r in $ROWS; do
	log "row $r"
	ROW_LOAD=$(cut -d' ' -f1 /proc/loadavg)
	if [[ $r =~ ^chain([0-9]+)-(cold|cached)$ ]]; then chain_row "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"; else "row_${r//-/_}"; fi
	report
done
cat "$RES/table.md"
ln -sfn "$RES" "$WORK/results/latest"
echo "results: $RES/table.md, $RES/results.json, logs in $RES/logs"
# STRICT=1 (make bench-smoke): every row has a kiln time, and no cell of
# a builder that is here failed.
if [ "$STRICT" = 1 ]; then
	bad=$(awk -F'\t' '$3 == "fail" || ($2 == "kiln" && ($3 != "ok" || $4 == "")) { print $1 " " $2 ": " $3 " " $5 }' "$TSV")
	[ -s "$TSV" ] || bad="no row was measured"
	if [ -n "$bad" ]; then
		printf 'compare.sh: STRICT=1: %s\n' "$bad" >&2
		exit 1
	fi
fi
