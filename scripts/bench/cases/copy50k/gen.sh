#!/bin/sh
# gen.sh DIR -- generate the copy50k build context into DIR (deterministic):
# copy5k's (../copy5k/gen.sh) and nine more copies of its small files,
#   DIR/files, DIR/files1 .. DIR/files9 : 10 x 5,000 files, 100 a directory
#   DIR/data/random.bin                 : copy5k's 20 MiB file
# with copy5k's fixed mtimes. Idempotent: does nothing if DIR/.gen50k-v1
# exists. scripts/bench/run.sh does not run it (it runs only ../shared's
# generators) but uses a context already there:
#   scripts/bench/cases/copy50k/gen.sh /tmp/kiln-bench/ctx/copy50k
#   CASES=copy50k scripts/bench/run.sh
set -eu
dir=${1:?usage: gen.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$dir/.gen50k-v1" ] && exit 0
mkdir -p "$dir"
"$here/../copy5k/gen.sh" "$dir"
for i in 1 2 3 4 5 6 7 8 9; do
	rm -rf "$dir/files$i"
	cp -a "$dir/files" "$dir/files$i"
done
touch "$dir/.gen50k-v1"
