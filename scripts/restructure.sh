#!/usr/bin/env bash
# restructure.sh: the move of issue 22, that makes the tree show the design
# (cmd, manifest, dag, fsm, executor, cache, toolbox, engine, image,
# testdata). Mechanical and repeatable: run it from anywhere in the
# repository; a second run does nothing. After merging a branch made
# before the move, run it again: files the branch added in an old
# directory move to the new one, and its imports are rewritten.
#
#  1. git mv each old directory to its new place (or, when the new one
#     exists already, each entry of the old one into it);
#  2. scripts/restructure.go rewrites the import paths of every .go file,
#     the package clauses of the renamed packages (lifecycle → fsm,
#     remotecache → remote, imported as remotecache) and imports
#     github.com/looplab/fsm as looplab;
#  3. gofmt -w, go build ./...;
#  4. lists the lines of non-Go files (and Go string literals) that still
#     name an old directory, to be edited by hand: the script does not
#     guess at prose, nor at ../shared paths.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
export PATH=/usr/local/go/bin:$HOME/go/bin:$PATH

# Go package directories: OLD=NEW[@ALIAS] (ALIAS: the name importers give
# the package when its own name changes and reads worse at a call site).
packages=(
	container=engine/container
	snapshot=engine/snapshot
	cgroup=engine/cgroup
	lifecycle=fsm
	store=image/store
	layer=image/layer
	registry=image/registry
	remotecache=cache/remote@remotecache
	buildctx=executor/buildctx
	debugger=executor/debugger
	dap=executor/debugger/dap
	progress=executor/progress
	history=executor/history
	junit=executor/junit
	module=manifest/module
	lock=manifest/lock
	platform=image/platform
	binfmt=engine/binfmt
)
# Other directories: OLD=NEW.
others=(
	bench=scripts/bench
	editors=docs/editors
)

# move OLD NEW: git mv OLD to NEW, or OLD's entries into an existing NEW.
move() {
	local old=$1 new=$2 e
	[ -e "$old" ] || return 0
	if [ ! -e "$new" ]; then
		mkdir -p "$(dirname "$new")"
		git mv "$old" "$new"
		echo "moved $old → $new"
		return
	fi
	shopt -s dotglob nullglob
	for e in "$old"/*; do
		e=${e#"$old"/}
		if [ -d "$old/$e" ] && [ -d "$new/$e" ]; then
			move "$old/$e" "$new/$e"
		elif [ -e "$new/$e" ]; then
			echo "restructure.sh: both $old/$e and $new/$e exist: merge them by hand" >&2
			exit 1
		elif git ls-files --error-unmatch "$old/$e" >/dev/null 2>&1; then
			git mv "$old/$e" "$new/$e"
			echo "moved $old/$e → $new/$e"
		else
			mv "$old/$e" "$new/$e"
			echo "moved $old/$e → $new/$e (untracked)"
		fi
	done
	shopt -u dotglob nullglob
	rmdir "$old" 2>/dev/null || { echo "restructure.sh: $old is not empty after the move" >&2; exit 1; }
}

for m in "${packages[@]}" "${others[@]}"; do
	m=${m%@*}
	move "${m%%=*}" "${m#*=}"
done

go run scripts/restructure.go "${packages[@]}"
changed=$(gofmt -l . 2>/dev/null | grep -v '/testdata/' || true)
if [ -n "$changed" ]; then
	gofmt -w $changed
fi
go build ./...

# What still names an old directory, for a hand edit: imports are done,
# these are paths in prose, commands and string literals.
olds=()
for m in "${packages[@]}" "${others[@]}"; do
	m=${m%@*}
	olds+=("${m%%=*}")
done
re="(^|[^-./[:alnum:]_])($(IFS='|'; echo "${olds[*]}"))/"
stale=$(git grep -nIE "$re" -- ':!*/testdata/*' ':!testdata/*' ':!go.sum' ':!scripts/restructure.*' ':!*/node_modules/*' |
	grep -vE '"container/(heap|list|ring)"|\.\./shared/|(^|/)(internal|engine|image|cache|executor|manifest|fsm)/('"$(IFS='|'; echo "${olds[*]}")"')/' || true)
if [ -n "$stale" ]; then
	echo "restructure.sh: lines that still name an old directory (check each by hand):"
	echo "$stale"
fi
echo "restructure.sh: done"
