# scripts/bench/registry.sh: helpers of the bench scripts that need a registry,
# sourced with WORK set. It picks a free port of 127.0.0.1 (HOST) and
# defines start_registry (docker-registry afresh on empty storage, no
# auth, plain HTTP), stop_registry, seconds CMD... (CMD's wall time, its
# stderr kept in $WORK/last.err) and median N...
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HOST=127.0.0.1:$PORT
REG_PID=
start_registry() {
	rm -rf "$WORK/registry" && mkdir -p "$WORK/registry"
	cat >"$WORK/registry/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry/data
http:
  addr: $HOST
YAML
	docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
	REG_PID=$!
	for _ in $(seq 100); do
		curl -fs "http://$HOST/v2/" >/dev/null && return
		sleep 0.05
	done
	echo "docker-registry did not start:" >&2
	cat "$WORK/registry/log" >&2
	exit 1
}
stop_registry() {
	if [ -n "$REG_PID" ]; then kill "$REG_PID" && wait "$REG_PID" 2>/dev/null || true; fi
	REG_PID=
}

# seconds CMD...: run CMD quietly, print its wall time in seconds; its
# stderr is kept in $WORK/last.err.
seconds() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>"$WORK/last.err" || { cat "$WORK/last.err" >&2; exit 1; }
	t1=$(date +%s.%N)
	printf '%.3f\n' "$(echo "$t1 - $t0" | bc)"
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
