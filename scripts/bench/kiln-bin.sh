# scripts/bench/kiln-bin.sh, sourced: kiln_bin DIR REPO puts the kiln to
# time in DIR/kiln: $KILN_BIN when set, else one built from REPO (make
# build); and, when there is one next to it, the kiln-init that kiln
# re-executes as its containers' init.
kiln_bin() {
	rm -f "$1/kiln-init"
	if [ -n "${KILN_BIN:-}" ]; then
		cp "$KILN_BIN" "$1/kiln"
		if [ -e "$(dirname "$KILN_BIN")/kiln-init" ]; then cp "$(dirname "$KILN_BIN")/kiln-init" "$1/kiln-init"; fi
	else
		make -s -C "$2" build KILN="$1/kiln" >/dev/null
	fi
}
