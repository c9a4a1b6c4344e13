# kiln: `make demo` sets up and runs the example; `make test` runs every test.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)

KILN    := bin/kiln
WORK    ?= /tmp/kiln-demo
# Packages the tests use: the busybox base, and the ecosystem's own tools
# that check kiln's output. TestDAPClient also needs node and npm (Debian's
# nodejs and npm, installed by test-deps when the commands are missing).
# uidmap's newuidmap and newgidmap run the rootless suite (TestRootless).
TEST_PACKAGES := gcc libc6-dev busybox-static skopeo umoci runc crun docker-registry buildah graphviz python3-junitparser python3-jinja2 tmux redis-server redis-tools file qemu-user-static uidmap
# The multi-platform tests' arm64 base: Debian's busybox-static:arm64,
# downloaded (not installed) where engine/enginetest.BusyboxFor unpacks it.
TEST_DEBS := /var/cache/kiln-test

.PHONY: demo test test-deep lint build deps test-deps buildkit test-buildkit bench bench-smoke fuzz clean

# kiln version says these: the commit, a version from git describe, the
# build date (SOURCE_DATE_EPOCH's when set, for a reproducible binary).
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u $(if $(SOURCE_DATE_EPOCH),-d @$(SOURCE_DATE_EPOCH)) +%Y-%m-%dT%H:%M:%SZ)
# The same hash of the sources goes into kiln and kiln-init: kiln
# re-executes the kiln-init next to it as its containers' init only when
# the two match (see container.Companion), else its own binary.
# (find, outside a git checkout: a hash of nothing would match any build).
SOURCES    := $(shell { git ls-files -z --cached --others --exclude-standard -- '*.go' '*.c' go.mod go.sum 2>/dev/null || find . -type f \( -name '*.go' -o -name '*.c' -o -name go.mod -o -name go.sum \) -print0 | sort -z; } | xargs -0 cat | sha256sum | cut -c1-16)
LDFLAGS    := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE) -X github.com/kiln-build/kiln/engine/container.buildStamp=$(SOURCES)
KILN_INIT  := $(dir $(KILN))kiln-init
# kiln is built with cgo, linked statically, when a C compiler and a static
# C library are here (Debian: gcc, libc6-dev): a rootless kiln then joins its
# user's namespace holder before Go starts (internal/rootless/nsjoin) instead
# of making a namespace per command, about 5 ms less. Without them
# (KILN_CGO=0) it is built without, and works the same, slower rootless.
KILN_CGO   ?= $(shell printf 'int main(void){return 0;}' | $${CC:-cc} -static -x c -o /dev/null - >/dev/null 2>&1 && echo 1 || echo 0)
KILN_GOFLAGS := -tags osusergo,netgo -ldflags '$(LDFLAGS)$(if $(filter 1,$(KILN_CGO)), -linkmode external -extldflags -static)'

build:
	@command -v go >/dev/null || { echo "make: Go 1.26 is needed (/usr/local/go/bin/go)"; exit 1; }
	CGO_ENABLED=$(KILN_CGO) go build $(KILN_GOFLAGS) -o $(KILN) ./cmd/kiln
	CGO_ENABLED=0 go build -ldflags '$(LDFLAGS)' -o $(KILN_INIT) ./cmd/kiln-init

# apt-get install what is missing, once.
define apt_install
	@missing=""; for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi
endef

deps:
	$(call apt_install,busybox-static)

test-deps:
	$(call apt_install,$(TEST_PACKAGES))
	@ls $(TEST_DEBS)/busybox-static_*_arm64.deb >/dev/null 2>&1 || { dpkg --add-architecture arm64 && apt-get update -qq && mkdir -p $(TEST_DEBS) && cd $(TEST_DEBS) && apt-get download -qq busybox-static:arm64; }
	@command -v node >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null; }
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }

# The main job: a busybox base image made offline from busybox-static and
# imported into kiln's store, then a real build of examples/hello (a
# templated loop of steps, a copy, a template, two tests) in kiln's own
# containers, and a run of the image it made.
demo: deps build
	scripts/busybox-rootfs.sh $(WORK)/rootfs
	$(KILN) import $(WORK)/rootfs -t busybox:latest --cmd /bin/sh
	$(KILN) build -f examples/hello/app.yml -t hello:latest --junit $(WORK)/junit.xml
	$(KILN) run hello
	$(KILN) images

test: test-deps buildkit
	go test ./...

# BuildKit (buildkitd, buildctl), the reference of the Dockerfile
# differential test, built once from the Go module proxy and cached under
# /var/cache/kiln-buildkit (or ~/.cache/kiln-buildkit): minutes the first
# time, instant after.
buildkit:
	scripts/buildkit.sh build

# Only the differential test of kiln against BuildKit (about 100 cases).
test-buildkit: test-deps buildkit
	go test -count=1 -run '^TestBuildKitDiff$$' ./cmd/kiln/

# A build of 510 steps, past overlayfs's 500 layers (20-45 s).
test-deep: test-deps
	KILN_TEST_DEEP=1 go test -count=1 -run '^TestBuildDeepDockerfile$$' ./cmd/kiln/

lint:
	test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	go vet ./...
	command -v staticcheck >/dev/null || go install honnef.co/go/tools/cmd/staticcheck@latest
	staticcheck ./...

# Each fuzz target for FUZZTIME (CI: 3000x, a count). Run one long with, e.g.:
#   go test -run '^$$' -fuzz '^FuzzExtract$$' -fuzztime 30m ./image/layer/
# A failing input is saved under the package's testdata/fuzz/FuzzXxx/ and
# is then a regression test of the plain `go test`.
FUZZTIME ?= 20s
FUZZ_TARGETS := image/layer:FuzzExtract image/layer:FuzzWriteDirRoundTrip manifest:FuzzLoad manifest:FuzzLoadDockerfile executor/buildctx:FuzzIgnoreFile
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; echo "fuzz $$fn ($$pkg) for $(FUZZTIME)"; \
		go test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg/; \
	done

bench: build test-deps
	go test -run '^$$' -bench . -benchtime 200x ./engine/container/ ./image/layer/

# The side-by-side harness (scripts/bench/compare.sh) on one tiny row: a
# 2-step chain, cold and cached, once, for kiln and for each peer that is
# here (BuildKit when `make buildkit` built it, Buildah when installed); it
# fails when a build fails (about 30 s). The full table: scripts/bench/README.md.
bench-smoke: test-deps
	RUNS=1 CHAINS=2 ROWS="chain-cold chain-cached" STRICT=1 WORK=/tmp/kiln-bench-smoke scripts/bench/compare.sh

clean:
	rm -rf bin $(WORK)
