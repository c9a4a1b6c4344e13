#!/usr/bin/env bash
# scripts/bench/rootless.sh: kiln as root beside kiln as an ordinary user
# (rootless, issue 19), in one run, interleaved: each run of each row times
# root, then rootless, so a burst of load on a shared machine hits both.
#
#   scripts/bench/rootless.sh                    # RUNS=5
#   ROOTLESS=1 scripts/bench/run.sh              # the same, through run.sh
#   RUNS=10 ROWS="version run-true" scripts/bench/rootless.sh
#   KILN_BIN=/tmp/kiln-before scripts/bench/rootless.sh   # a given binary
#
# Rows: version (`kiln version`: the fixed cost of a command), run-true
# (`kiln run busybox -- true`: container start), chain10-cold/-warm,
# copy5k-cold/-warm. The user (BENCH_USER, default kilntest, as
# TestRootless) is created when missing, with a subordinate id range.
# Each mode has its own template root (the base imported and run once, by
# that user); a cold run starts from a copy of it, the previous root moved
# aside, not deleted. Runs as root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SHARED=${SHARED:-$REPO/../shared}
WORK=${WORK:-/tmp/kiln-bench}/rootless
RUNS=${RUNS:-5}
ROWS=${ROWS:-version run-true chain10-cold chain10-warm copy5k-cold copy5k-warm}
BENCH_USER=${BENCH_USER:-kilntest}
RANGE=${RANGE:-1879048192-1879113727} # TestRootless's
export PATH=/usr/local/go/bin:$PATH

[ "$(id -u)" = 0 ] || { echo "rootless.sh: run as root (it times both)" >&2; exit 2; }
for tool in newuidmap newgidmap setpriv useradd usermod; do
	command -v "$tool" >/dev/null || { echo "rootless.sh: $tool is not installed (Debian: uidmap, util-linux, passwd)" >&2; exit 2; }
done
if ! id "$BENCH_USER" >/dev/null 2>&1; then
	useradd --no-create-home --shell /usr/sbin/nologin -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$BENCH_USER"
fi
touch /etc/subuid /etc/subgid
grep -q "^$BENCH_USER:" /etc/subuid || usermod --add-subuids "$RANGE" "$BENCH_USER"
grep -q "^$BENCH_USER:" /etc/subgid || usermod --add-subgids "$RANGE" "$BENCH_USER"
UID_=$(id -u "$BENCH_USER")
GID_=$(id -g "$BENCH_USER")

mkdir -p "$WORK" "$WORK/results"
chmod 755 "$WORK" "$(dirname "$WORK")"
KILN=$WORK/kiln
. "$HERE/kiln-bin.sh"
kiln_bin "$WORK" "$REPO"
chmod 755 "$KILN"
OLD=$WORK/old
mkdir -p "$OLD"
chmod 755 "$OLD"
# The user's XDG_RUNTIME_DIR: kiln keeps its namespace holder's file there
# (a kiln built with cgo: each command joins the holder instead of making
# a user namespace); the holder is ended when the script ends.
RUNDIR=$WORK/run
rm -rf "$RUNDIR"
install -d -o "$UID_" -g "$GID_" -m 700 "$RUNDIR"
stop_holder() {
	local pid ino
	read -r pid ino <"$RUNDIR/kiln/userns" 2>/dev/null || return 0
	[ "$(stat -L -c %i "/proc/$pid/ns/user" 2>/dev/null)" = "$ino" ] && kill "$pid"
	return 0
}
trap 'stop_holder; rm -rf "$OLD"' EXIT
BASE_ROOTFS=$WORK/busybox-rootfs
"$REPO/scripts/busybox-rootfs.sh" "$BASE_ROOTFS" >/dev/null
chmod -R a+rX "$BASE_ROOTFS"
# The user's home (its HOME; the roots are given with --root).
HOMEDIR=$WORK/home
mkdir -p "$HOMEDIR"
chown "$UID_:$GID_" "$HOMEDIR"

# as MODE CMD...: runs CMD as root or as the user, each through the same
# setpriv and env (their ~1.5 ms in both timings), with an environment of
# its own.
as() {
	local mode=$1 u=0 g=0 h=/root run=/run/user/0
	shift
	if [ "$mode" = rootless ]; then u=$UID_ g=$GID_ h=$HOMEDIR run=$RUNDIR; fi
	setpriv --reuid "$u" --regid "$g" --init-groups -- \
		env -i HOME="$h" XDG_RUNTIME_DIR="$run" PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$@"
}

for mode in root rootless; do
	t=$WORK/template-$mode
	rm -rf "$t"
	if [ "$mode" = rootless ]; then install -d -o "$UID_" -g "$GID_" -m 700 "$t"; fi
	as "$mode" "$KILN" --root "$t" import "$BASE_ROOTFS" -t busybox:latest --cmd /bin/sh >/dev/null
	as "$mode" "$KILN" --root "$t" run busybox -- true
done

for c in chain10 copy5k; do
	ctx=$WORK/ctx/$c
	mkdir -p "$ctx"
	if [ "$c" = chain10 ]; then
		{
			echo "from: \"{{ base }}\""
			echo "steps:"
			for i in $(seq -w 1 10); do echo "  - run: echo step$i > /step$i"; done
		} >"$ctx/kiln.yml"
	else
		cp "$HERE/cases/$c/kiln.yml" "$ctx/kiln.yml"
		"$SHARED/bench/cases/$c/gen.sh" "$ctx" # idempotent
	fi
done
chmod -R a+rX "$WORK/ctx"

# fresh MODE: the mode's root, a copy of its template (the old one moved aside).
fresh() {
	local r=$WORK/root-$1
	if [ -e "$r" ]; then mv "$r" "$(mktemp -d -p "$OLD")"; fi
	cp -a "$WORK/template-$1" "$r"
}
# cmd ROW MODE: the command a row times.
cmd() {
	local r=$WORK/root-$2
	case $1 in
	version) echo "$KILN version" ;;
	run-true) echo "$KILN --root $r run busybox -- true" ;;
	chain10-* | copy5k-*)
		local c=${1%-*}
		echo "$KILN --root $r build --progress plain --set base=busybox:latest -f $WORK/ctx/$c/kiln.yml $WORK/ctx/$c"
		;;
	esac
}

stamp=$(date +%Y%m%d-%H%M%S)
out=$WORK/results/rootless-$stamp.txt
raw=$WORK/results/rootless-$stamp.tsv
log=$WORK/results/rootless-$stamp.log
: >"$raw"
# Each row starts from fresh roots; warm rows build once untimed first.
for row in $ROWS; do
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	for mode in root rootless; do
		fresh "$mode"
		case $row in *-warm) as "$mode" $(cmd "$row" "$mode") >>"$log" 2>&1 ;; esac
	done
	for i in $(seq 1 "$RUNS"); do
		for mode in root rootless; do
			case $row in *-cold) fresh "$mode" ;; esac
			c=$(cmd "$row" "$mode")
			t0=$(date +%s%N)
			if ! as "$mode" $c >>"$log" 2>&1; then
				echo "rootless.sh: $row $mode failed: $c (log: $log)" >&2
				tail -5 "$log" >&2
				exit 1
			fi
			t1=$(date +%s%N)
			printf '%s\t%s\t%s\t%s\n' "$row" "$mode" $(((t1 - t0) / 1000)) "$load" >>"$raw"
		done
	done
done

# median ROW MODE: the median, in ms, of the row's runs.
median() {
	awk -F'\t' -v r="$1" -v m="$2" '$1 == r && $2 == m { print $3 }' "$raw" | sort -n |
		awk '{ a[NR] = $1 } END { if (NR % 2) v = a[(NR + 1) / 2]; else v = (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f", v / 1000 }'
}
span() {
	awk -F'\t' -v r="$1" -v m="$2" '$1 == r && $2 == m { print $3 }' "$raw" | sort -n |
		awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f..%.0f", lo / 1000, hi / 1000 }'
}
{
	echo "kiln ${KILN_BIN:-$(cd "$REPO" && git rev-parse --short HEAD)} root vs rootless ($BENCH_USER), $RUNS runs interleaved, $(nproc) cores, $(date -u +%FT%TZ)"
	printf '%-14s %12s %14s %12s %14s %8s  %s\n' row "root ms" "(min..max)" "rootless ms" "(min..max)" ratio "load at start"
	for row in $ROWS; do
		a=$(median "$row" root)
		b=$(median "$row" rootless)
		load=$(awk -F'\t' -v r="$row" '$1 == r { print $4; exit }' "$raw")
		printf '%-14s %12s %14s %12s %14s %7.2fx  %s\n' "$row" "$a" "($(span "$row" root))" "$b" "($(span "$row" rootless))" \
			"$(awk -v a="$a" -v b="$b" 'BEGIN { print b / a }')" "$load"
	done
	echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out"
echo "results: $out (each run: $raw)"
