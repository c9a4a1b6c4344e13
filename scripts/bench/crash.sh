#!/usr/bin/env bash
# Crash safety, long: kill kiln build with SIGKILL at random points
# KILN_CRASH_ITERATIONS times (default 100), each time checking that the
# next build succeeds and leaves no mount, cgroup, process or temp file,
# and that every cache record verifies. Needs root.
#
#   scripts/bench/crash.sh            # 100 iterations
#   scripts/bench/crash.sh 500        # more
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/usr/local/go/bin:$HOME/go/bin:$PATH
export KILN_CRASH_ITERATIONS=${1:-${KILN_CRASH_ITERATIONS:-100}}
exec go test -count=1 -timeout 60m -run '^TestCrashRecovery$' -v ./cmd/kiln/
