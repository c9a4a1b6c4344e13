#!/bin/sh
# gen.sh DIR: generate the copy50k build context into DIR (deterministic):
# 50,000 text files of 64..2047 bytes (~53 MB) in 500 directories of 100,
# made as ../shared/bench/cases/copy5k/gen.sh makes copy5k's 5,000
# (same sizes and contents), without the 20 MiB random file: a copy
# whose cost is all per file. mtimes are fixed. Does nothing when DIR/.gen-v1
# exists.
set -eu
dir=${1:?usage: gen.sh DIR}
stamp="$dir/.gen-v1"
[ -f "$stamp" ] && exit 0
rm -rf "$dir/files"
mkdir -p "$dir/files"
for d in $(seq -w 0 499); do mkdir -p "$dir/files/d$d"; done
awk -v root="$dir/files" 'BEGIN {
  line = "the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJ\n";
  for (i = 0; i < 50000; i++) {
    f = sprintf("%s/d%03d/f%05d.txt", root, int(i / 100), i);
    n = 64 + (i * 7919) % 1984;
    s = sprintf("file %d size %d\n", i, n);
    while (length(s) < n) s = s line;
    printf "%s", substr(s, 1, n) > f;
    close(f);
  }
}'
find "$dir/files" -exec touch -h -d @1700000000 {} +
touch "$stamp"
