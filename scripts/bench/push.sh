#!/usr/bin/env bash
# scripts/bench/push.sh: time a push of an image with one 200 MiB layer (the
# big200m case's file: 10 copies of 20 MiB of hex-dumped random bytes) to
# Debian's docker-registry on 127.0.0.1, with kiln and with skopeo copy of
# the same image from an OCI layout, in the same run, alternating.
#
#   scripts/bench/push.sh            # 3 runs each
#   RUNS=5 scripts/bench/push.sh
#
# Each timed push goes to a registry started afresh on empty storage, so
# that no blob is there already and neither tool can mount one from
# another repository. Everything goes under $WORK (default
# /tmp/kiln-bench-push).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/kiln-bench-push}
RUNS=${RUNS:-3}
export PATH=/usr/local/go/bin:$PATH
for tool in docker-registry skopeo; do
	command -v $tool >/dev/null || { echo "scripts/bench/push.sh: $tool is not installed (apt-get install $tool)" >&2; exit 1; }
done

rm -rf "$WORK" && mkdir -p "$WORK/ctx"
KILN=$WORK/kiln
(cd "$REPO" && CGO_ENABLED=0 go build -o "$KILN" ./cmd/kiln)
ROOT=$WORK/root
export DOCKER_CONFIG=$WORK/docker # no credentials: an anonymous local registry

# The image: one layer holding /big.bin, made as the big200m case makes it.
(set +o pipefail; dd if=/dev/urandom bs=1M count=7 2>/dev/null | od -An -tx1 | head -c 20971520 >"$WORK/chunk") # od dies of SIGPIPE
for i in 1 2 3 4 5 6 7 8 9 10; do cat "$WORK/chunk"; done >"$WORK/ctx/big.bin"
rm "$WORK/chunk"
"$KILN" --root "$ROOT" import "$WORK/ctx" -t big >/dev/null
"$KILN" --root "$ROOT" push big "oci-layout:$WORK/layout:big"

# shellcheck source=scripts/bench/registry.sh
. "$HERE/registry.sh"
trap stop_registry EXIT

declare -a kiln_gzip kiln_zstd skopeo
for run in $(seq "$RUNS"); do
	start_registry
	kiln_gzip+=("$(seconds "$KILN" --root "$ROOT" push big "$HOST/kiln/big:$run")")
	stop_registry
	start_registry
	skopeo+=("$(seconds skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:big" "docker://$HOST/skopeo/big:$run")")
	stop_registry
	start_registry
	kiln_zstd+=("$(seconds "$KILN" --root "$ROOT" push big "$HOST/kiln/big:$run" --compression zstd)")
	stop_registry
done

size=$(du -b "$WORK/layout/blobs/sha256" | awk '{print $1}')
{
	echo "kiln $(cd "$REPO" && git rev-parse --short HEAD) on $(nproc) cores, $(date -u +%FT%TZ): push of a 200 MiB layer (gzip blobs in layout: $((size / 1000000)) MB) to docker-registry $(docker-registry --version | awk '{print $3}') on $HOST"
	printf 'kiln push (gzip, as stored):      median %6.2fs   runs: %s\n' "$(median "${kiln_gzip[@]}")" "${kiln_gzip[*]}"
	printf 'skopeo copy oci: -> docker://:    median %6.2fs   runs: %s\n' "$(median "${skopeo[@]}")" "${skopeo[*]}"
	printf 'kiln push --compression zstd:     median %6.2fs   runs: %s\n' "$(median "${kiln_zstd[@]}")" "${kiln_zstd[*]}"
} | tee "$WORK/result.txt"
