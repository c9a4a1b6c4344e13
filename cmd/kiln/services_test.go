package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// servicesManifest has an HTTP service ready by port, one ready by
// command, and two tests that each start their own web service on the
// same port 8080 at once.
const servicesManifest = `
from: busybox
services:
  web:
    image: busybox
    command: mkdir -p /www && echo "hello from $HOSTNAME $GREETING" > /www/index.html && echo web-booted && exec httpd -f -p 8080 -h /www
    env: {GREETING: services}
    ready: {port: 8080}
    timeout: 10s
  marker:
    image: busybox
    command: sleep 0.2; touch /tmp/up; exec sleep 1000
    ready: {run: test -e /tmp/up}
tests:
  - name: by-name
    services: [web]
    run: wget -qO- http://web:8080/ | grep -x "hello from web services" && wget -qO- http://localhost:8080/ >/dev/null
  - name: same-port
    services: [web, marker]
    run: wget -qO- http://127.0.0.1:8080/ | grep hello && grep -w marker /etc/hosts
`

// buildJSON builds files, a build context, with --progress json in a
// new root holding busybox, and fails the test unless the build passes.
func buildJSON(t *testing.T, files map[string]string) (root, dir string, r result) {
	t.Helper()
	enginetest.RequireRoot(t)
	root = newRoot(t)
	importBusybox(t, root)
	dir = writeContext(t, files)
	r = kiln(t, root, nil, "build", "--progress", "json", dir)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return root, dir, r
}

// wantFinal checks the state each node of want ended in.
func wantFinal(t *testing.T, b jsonBuild, want map[string]string) {
	t.Helper()
	for node, w := range want {
		if got := b.final[node]; got != w {
			t.Errorf("node %s ended %q, want %q (all: %v)", node, got, w, b.final)
		}
	}
}

// TestBuildServices: tests reach their services by name and on
// localhost; readiness by port and by command; two tests each with its
// own service on port 8080 both pass at once (nothing is published on
// the host: port 8080 of the host stays free); the services are nodes
// that end stopped; nothing is left.
func TestBuildServices(t *testing.T) {
	root, dir, r := buildJSON(t, map[string]string{"kiln.yml": servicesManifest})
	wantFinal(t, parseJSONBuild(t, r.stdout), map[string]string{
		"main/test/by-name":                  "passed",
		"main/test/same-port":                "passed",
		"main/test/by-name/service/web":      "stopped",
		"main/test/same-port/service/web":    "stopped",
		"main/test/same-port/service/marker": "stopped",
	})
	noServiceLeft(t, root)
	// A second build hits the tests' cache; a change to a service's
	// settings runs them again.
	r = mustKiln(t, root, "build", "--progress", "json", dir)
	if b := parseJSONBuild(t, r.stdout); b.final["main/test/by-name"] != "cached" {
		t.Errorf("second build: by-name ended %q, want cached", b.final["main/test/by-name"])
	}
	if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte(strings.Replace(servicesManifest, "GREETING: services", "GREETING: changed", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r = kiln(t, root, nil, "build", "--progress", "json", dir)
	final := map[string]string{}
	var errText string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e struct{ Type, Node, State, Error string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if e.Type == "state" {
			final[e.Node] = e.State
		}
		if e.Type == "result" {
			errText = e.Error
		}
	}
	if r.code == 0 || final["main/test/by-name"] != "failed" || final["main/test/same-port"] != "passed" {
		t.Errorf("after a change to the service: exit %d, by-name %q (want failed: it greps the old greeting), same-port %q (want passed, not cached)",
			r.code, final["main/test/by-name"], final["main/test/same-port"])
	}
	// A failing test prints its service's logs.
	if !strings.Contains(errText, "service web's last output") || !strings.Contains(errText, "web-booted") {
		t.Errorf("a failing test's error does not show its service's output:\n%s", errText)
	}
	noServiceLeft(t, root) // after a failed test
}

// neverReadyManifest has a service that prints and never listens on
// its ready port, with a timeout of 1s.
const neverReadyManifest = `from: busybox
services:
  db:
    image: busybox
    command: 'echo "db starting"; echo "db: bad config" >&2; exec sleep 1000'
    ready: {port: 5432}
    timeout: 1s
tests:
  - name: query
    services: [db]
    run: "true"
`

// TestBuildServiceNeverReady: a service that never gets ready fails the
// build within its timeout, naming it, with its last lines; its test
// does not run; nothing is left.
func TestBuildServiceNeverReady(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	importBusybox(t, root)
	dir := writeContext(t, map[string]string{"kiln.yml": neverReadyManifest})
	start := time.Now()
	r := kiln(t, root, nil, "build", dir)
	took := time.Since(start)
	if r.code == 0 {
		t.Fatalf("the build passed: %s", r.stderr)
	}
	for _, want := range []string{`service "db" failed`, "never got ready within 1s", "nothing listens on port 5432", "db: bad config"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	if took > 5*time.Second {
		t.Errorf("the build took %v to fail, with a timeout of 1s", took)
	}
	noServiceLeft(t, root)
}

// TestBuildServicesKilled: Ctrl-C and SIGKILL of kiln while a test runs
// beside its service, and Ctrl-C while a service is still starting (not
// ready yet), leave no process of the service (nor, checked by newRoot,
// mount, container or snapshot after the next kiln).
func TestBuildServicesKilled(t *testing.T) {
	enginetest.RequireRoot(t)
	for _, tc := range []struct {
		name     string
		sig      syscall.Signal
		starting bool // signalled while the service waits to get ready
	}{
		{"interrupt", syscall.SIGINT, false},
		{"killed", syscall.SIGKILL, false},
		{"interrupt-starting", syscall.SIGINT, true},
	} {
		sig := tc.sig
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot(t)
			importBusybox(t, root)
			marker := fmt.Sprintf("%d.%d", 5000+os.Getpid()%1000, time.Now().UnixNano()%1000)
			ready, wait := "", "started"
			if tc.starting {
				// It never listens: the build waits for it, with the
				// service running, until the signal.
				ready, wait = "\n    ready: {port: 9}\n    timeout: 60s", "starting"
			}
			dir := writeContext(t, map[string]string{"kiln.yml": `
from: busybox
services:
  svc:
    image: busybox
    command: exec sleep ` + marker + ready + `
tests:
  - name: long
    services: [svc]
    run: echo started; exec sleep 100
`})
			cmd := kilnCommand(t, root, "build", "--progress", "plain", dir)
			out, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			for sc.Scan() && !strings.Contains(sc.Text(), wait) {
			}
			// A service with no ready check is ready once created: its
			// shell may not have run sleep yet.
			for deadline := time.Now().Add(3 * time.Second); len(sleeping(marker)) == 0 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if len(sleeping(marker)) == 0 {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatal("the service is not running")
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			go func() {
				for sc.Scan() {
				}
			}()
			_ = cmd.Wait()
			noneLeft(t, root, marker, 3*time.Second)
			if sig == syscall.SIGKILL {
				mustKiln(t, root, "run", "busybox", "--", "true") // the next kiln sweeps what the crash left
			}
		})
	}
}

// TestExampleServices builds examples/services: a test of a client
// against an HTTP service built in the same manifest, and one writing
// and reading Debian's redis-server, built offline into busybox.
func TestExampleServices(t *testing.T) {
	enginetest.RequireRoot(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server redis-tools; the Makefile's TEST_PACKAGES)")
	}
	root := newRoot(t)
	importBusybox(t, root)
	src, err := filepath.Abs("../../examples/services")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"kiln.yml", "prepare.sh"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(filepath.Join(dir, "prepare.sh")).CombinedOutput(); err != nil {
		t.Fatalf("prepare.sh: %v\n%s", err, out)
	}
	r := kiln(t, root, nil, "build", "--progress", "json", dir)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	b := parseJSONBuild(t, r.stdout)
	for _, n := range []string{"client/test/fetch", "client/test/write-read"} {
		if b.final[n] != "passed" {
			t.Errorf("%s ended %q, want passed", n, b.final[n])
		}
	}
}

// BenchmarkServiceOverhead builds, uncached, a test alone and the same
// test beside one busybox service ready by port, in pairs, the order of
// the two alternating so that a change of the machine's load weighs on
// both: overhead-ms is the median of the pairs' differences of wall
// time, what a service costs a test; overhead-cpu-ms the same of the CPU
// time of kiln and of the containers it reaped, which the load of other
// processes does not inflate as it does wall time.
//
//	go test -run '^$' -bench ServiceOverhead -benchtime 30x ./cmd/kiln/
func BenchmarkServiceOverhead(b *testing.B) {
	enginetest.RequireRoot(b)
	base, _, _ := strings.Cut(webGetManifest, "    services:") // up to the test's name
	root := filepath.Join(b.TempDir(), "root")
	if r := run(b.Context(), []string{"--root", root, "import", enginetest.Busybox(b), "-t", "busybox"}, strings.NewReader(""), io.Discard, io.Discard); r != 0 {
		b.Fatal("import failed")
	}
	var dirs [2]string // alone, with the service
	for i, test := range []string{"    run: \"true\"\n", "    services: [web]\n    run: \"true\"\n"} {
		dirs[i] = b.TempDir()
		if err := os.WriteFile(filepath.Join(dirs[i], "kiln.yml"), []byte(base+test), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	build := func(dir string) (wall, cpu time.Duration) {
		cpu0 := cpuTime()
		start := time.Now()
		var stderr strings.Builder
		if r := run(b.Context(), []string{"--root", root, "build", "--no-cache", "--progress", "plain", dir}, strings.NewReader(""), io.Discard, &stderr); r != 0 {
			b.Fatalf("build: %s", stderr.String())
		}
		return time.Since(start), cpuTime() - cpu0
	}
	build(dirs[0]) // the first build unpacks busybox
	var walls, cpus, alone []float64
	i := 0
	for b.Loop() {
		var w, c [2]time.Duration
		for _, k := range []int{i % 2, 1 - i%2} {
			w[k], c[k] = build(dirs[k])
		}
		i++
		walls = append(walls, float64(w[1]-w[0])/1e6)
		cpus = append(cpus, float64(c[1]-c[0])/1e6)
		alone = append(alone, float64(w[0])/1e6)
	}
	b.ReportMetric(median(alone), "alone-ms")
	b.ReportMetric(median(walls), "overhead-ms")
	b.ReportMetric(median(cpus), "overhead-cpu-ms")
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average: %s", strings.TrimSpace(string(l)))
	}
}

// median returns the median of xs (which it sorts).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// cpuTime returns the CPU time, user and system, of this process and of
// the children it reaped.
func cpuTime() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

// noServiceLeft checks, after a build in this process, that nothing of
// its services is left: no process using the root, no network namespace
// of a pod held open by this process, no container or snapshot
// directory, no mount mentioning the root.
func noServiceLeft(t *testing.T, root string) {
	t.Helper()
	if left := processesUnder(root); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
	own, _ := os.Readlink("/proc/self/ns/net")
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "net:[") && l != own {
			t.Errorf("a pod's network namespace is still open: fd %s → %s", filepath.Base(fd), l)
		}
	}
	if left := leftInRoot(root); len(left) > 0 {
		t.Errorf("left in %s: %v", root, left)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), root) {
		t.Errorf("a mount under %s is left", root)
	}
}

// jsonStates returns, for each node of a --progress json build, every
// state it entered, in order.
func jsonStates(t *testing.T, stdout string) map[string][]string {
	t.Helper()
	states := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var e struct{ Type, Node, State string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if e.Type == "state" {
			states[e.Node] = append(states[e.Node], e.State)
		}
	}
	return states
}

// webGetManifest has a test beside an HTTP service ready by port.
const webGetManifest = `from: busybox
services:
  web:
    image: busybox
    command: exec httpd -f -p 8080
    ready: {port: 8080}
tests:
  - name: get
    services: [web]
    run: wget -qO /dev/null http://web:8080/ || true
`

// TestBuildServicesCachedNotStarted: a test that passed before, and is
// unchanged, is cached without starting its services: they never enter
// starting, and end cached.
func TestBuildServicesCachedNotStarted(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	importBusybox(t, root)
	dir := writeContext(t, map[string]string{"kiln.yml": webGetManifest})
	mustKiln(t, root, "build", "--progress", "json", dir)
	r := mustKiln(t, root, "build", "--progress", "json", dir)
	states := jsonStates(t, r.stdout)
	if got := strings.Join(states["main/test/get"], " "); !strings.HasSuffix(got, "cached") {
		t.Fatalf("the second build's test went %q, want it cached", got)
	}
	if got := strings.Join(states["main/test/get/service/web"], " "); got != "cached" {
		t.Errorf("the cached test's service went %q, want only cached (never started)", got)
	}
}

// stepServiceManifest has a run step that needs a service while the
// image builds (a migration against a database): it fetches from it
// into the image.
const stepServiceManifest = `
from: busybox
services:
  db:
    image: busybox
    command: mkdir -p /www && echo "schema $VERSION" > /www/schema && echo db-booted && exec httpd -f -p 5432 -h /www
    env: {VERSION: v1}
    ready: {port: 5432}
steps:
  - run: wget -qO /schema http://db:5432/schema
    services: [db]
  - run: cat /schema
tests:
  - name: migrated
    run: grep -x "schema v1" /schema
`

// TestBuildStepServices: a run step with services: [db] runs beside its
// service, started before it and stopped after; its key covers the
// service's settings; a cached step does not start it; a failing step
// prints the service's logs.
func TestBuildStepServices(t *testing.T) {
	root, dir, r := buildJSON(t, map[string]string{"kiln.yml": stepServiceManifest})
	states := jsonStates(t, r.stdout)
	for node, want := range map[string]string{
		"main/0":             "checking-cache creating running committing done",
		"main/0/service/db":  "starting ready stopped",
		"main/test/migrated": "checking-cache creating running passed",
	} {
		if got := strings.Join(states[node], " "); got != want {
			t.Errorf("node %s went %q, want %q", node, got, want)
		}
	}
	if left := processesUnder(root); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
	// Again: the step is cached and its service never starts.
	r = mustKiln(t, root, "build", "--progress", "json", dir)
	states = jsonStates(t, r.stdout)
	if got := strings.Join(states["main/0"], " "); got != "checking-cache cached" {
		t.Errorf("second build: the step went %q, want cached", got)
	}
	if got := strings.Join(states["main/0/service/db"], " "); got != "cached" {
		t.Errorf("second build: the cached step's service went %q, want only cached", got)
	}
	// A change to the service's settings runs the step again: here the
	// test then fails, as the schema changed.
	write := func(m string) {
		if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(strings.Replace(stepServiceManifest, "VERSION: v1", "VERSION: v2", 1))
	r = kiln(t, root, nil, "build", "--progress", "json", dir)
	states = jsonStates(t, r.stdout)
	if got := strings.Join(states["main/0"], " "); !strings.HasSuffix(got, "done") {
		t.Errorf("after a change to the service: the step went %q, want it run again", got)
	}
	if r.code == 0 {
		t.Errorf("after a change to the service the test passed: the step did not see the new service")
	}
	// A failing step prints its service's logs.
	write(strings.Replace(stepServiceManifest, "http://db:5432/schema", "http://db:5432/missing", 1))
	r = kiln(t, root, nil, "build", dir)
	if r.code == 0 {
		t.Fatal("a step fetching a missing file passed")
	}
	for _, want := range []string{"service db's last output", "db-booted"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the failed step's error does not say %q:\n%s", want, r.stderr)
		}
	}
	noServiceLeft(t, root)
}

// TestBuildServicesShown: the plain progress prints a service's states;
// the graph draws service nodes (DOT: a cylinder; Mermaid: [( )]); the
// graph of the last build, from its record, colours a service that ran
// as ran, and one that never started (its test cached) as cached; kiln
// history counts the build.
func TestBuildServicesShown(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	importBusybox(t, root)
	dir := writeContext(t, map[string]string{"kiln.yml": webGetManifest})
	const svc = "main/test/get/service/web"
	r := mustKiln(t, root, "build", "--progress", "plain", dir)
	for _, want := range []string{"[" + svc + "] starting: service: web (get)", "[" + svc + "] ready: service: web (get)", "[" + svc + "] stopped: service: web (get) ("} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the plain progress does not say %q:\n%s", want, r.stderr)
		}
	}
	dot := mustKiln(t, root, "graph", "--after-build", dir).stdout
	if !regexp.MustCompile(`"` + svc + `" \[\s*label="service: web \(get\)\\nran [0-9.]+m?s"\s*shape=cylinder\s*style="filled"\s*fillcolor="#c7f0c2"`).MatchString(dot) {
		t.Errorf("the graph of the build does not draw the service as a cylinder that ran:\n%s", dot)
	}
	mermaid := mustKiln(t, root, "graph", "--format", "mermaid", dir).stdout
	if !strings.Contains(mermaid, `[("service: web (get)")]`) {
		t.Errorf("the Mermaid graph does not draw the service:\n%s", mermaid)
	}
	mustKiln(t, root, "build", "--progress", "plain", dir) // the test is cached: its service does not start
	dot = mustKiln(t, root, "graph", "--after-build", dir).stdout
	if !regexp.MustCompile(`"` + svc + `" \[\s*label="service: web \(get\)\\ncached"`).MatchString(dot) {
		t.Errorf("the graph of the cached build does not draw the service cached:\n%s", dot)
	}
	var hist []struct{ Status string }
	if err := json.Unmarshal([]byte(mustKiln(t, root, "history", "--format", "json").stdout), &hist); err != nil || len(hist) != 2 {
		t.Errorf("kiln history lists %d builds (%v), want 2", len(hist), err)
	}
}

// TestBuildServicesModuleAndDockerfile: a module brings a service (with
// its parameters templated in), which its own test and the using
// stage's test name; a service is a stage built from a Dockerfile (the
// bridge), run with the Dockerfile's CMD.
func TestBuildServicesModuleAndDockerfile(t *testing.T) {
	root, _, r := buildJSON(t, map[string]string{
		"Dockerfile.db": "FROM busybox\nRUN mkdir -p /www && echo from-the-dockerfile > /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"5432\", \"-h\", \"/www\"]\n",
		"modules/web.yml": `---
name: web
params:
  port: {default: 8080, type: int}
---
services:
  web:
    image: busybox
    command: mkdir -p /www && echo from-the-module-{{ port }} > /www/index.html && exec httpd -f -p {{ port }} -h /www
    ready: {port: {{ port }}}
tests:
  - name: own
    services: [web]
    run: wget -qO- http://web:{{ port }}/ | grep -x from-the-module-{{ port }}
`,
		"kiln.yml": `
stages:
  db:
    dockerfile: ./Dockerfile.db
  app:
    from: busybox
    services:
      db:
        stage: db
        ready: {port: 5432}
    steps:
      - use: ./modules/web.yml
        with: {port: 9090}
    tests:
      - name: both
        services: [web, db]
        run: wget -qO- http://web:9090/ | grep -x from-the-module-9090 && wget -qO- http://db:5432/ | grep -x from-the-dockerfile
target: app
`})
	wantFinal(t, parseJSONBuild(t, r.stdout), map[string]string{
		"app/test/web/own":             "passed",
		"app/test/both":                "passed",
		"app/test/web/own/service/web": "stopped",
		"app/test/both/service/web":    "stopped",
		"app/test/both/service/db":     "stopped",
	})
	noServiceLeft(t, root)
}

// TestBuildServicesShared: a shared service serves a run step and two
// tests from one instance, started once and stopped after the last of
// them (the three read the one instance's random id); when all three are
// cached it never starts.
func TestBuildServicesShared(t *testing.T) {
	root, dir, r := buildJSON(t, map[string]string{"kiln.yml": `
from: busybox
services:
  web:
    image: busybox
    command: mkdir -p /www && cat /proc/sys/kernel/random/uuid > /www/index.html && exec httpd -f -p 8080 -h /www
    ready: {port: 8080}
    share: true
steps:
  - run: wget -qO /seen-by-step http://web:8080/
    services: [web]
tests:
  - name: a
    services: [web]
    run: wget -qO- http://web:8080/ | cmp - /seen-by-step
  - name: b
    services: [web]
    run: wget -qO- http://web:8080/ | cmp - /seen-by-step
`})
	states := jsonStates(t, r.stdout)
	if got := strings.Join(states["main/service/web"], " "); got != "starting ready stopped" {
		t.Errorf("the shared service went %q, want started once and stopped", got)
	}
	wantFinal(t, parseJSONBuild(t, r.stdout), map[string]string{"main/0": "done", "main/test/a": "passed", "main/test/b": "passed"})
	noServiceLeft(t, root)
	r = mustKiln(t, root, "build", "--progress", "json", dir)
	if got := strings.Join(jsonStates(t, r.stdout)["main/service/web"], " "); got != "cached" {
		t.Errorf("all its users cached, the shared service went %q, want only cached", got)
	}
}

// TestBuildDebugServiceShellScript: at a stop in a test, shell
// --service db CMD, typed through a pipe, runs CMD in the service's
// container (its PID 1 is the service's httpd) and prints its output; an unknown service is an error
// naming the test's services; the build goes on and passes.
func TestBuildDebugServiceShellScript(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	importBusybox(t, root)
	dir := writeContext(t, map[string]string{"kiln.yml": webGetManifest})
	script := "shell --service nope true\nshell --service web readlink /proc/1/exe; cat /proc/1/comm; cat /nonexistent\ncontinue\n"
	r := kiln(t, root, strings.NewReader(script), "build", "--debug", "--progress", "plain", dir)
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	for _, want := range []string{`runs beside no service "nope": its services are web`, "/bin/busybox\nhttpd\n", "can't open '/nonexistent'"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the debugger did not print %q:\n%s", want, r.stderr)
		}
	}
	noServiceLeft(t, root)
}

// TestBuildSummaryCountsNoServices: the summary's "ran" and "cached"
// count steps, bases and tests, never services (a service runs for its
// tests; it is not built, and one whose tests were cached never starts).
// Both the plain summary line and kiln history (the build record, which
// the terminal view's summary also counts) say so, on a first build (the
// test runs with its service) and an all-cached one (the service never
// starts: it was counted as cached).
func TestBuildSummaryCountsNoServices(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	importBusybox(t, root)
	dir := writeContext(t, map[string]string{"kiln.yml": `from: busybox
services:
  marker:
    image: busybox
    command: touch /tmp/up; exec sleep 1000
    ready: {run: test -e /tmp/up}
tests:
  - name: uses-marker
    services: [marker]
    run: "true"
`})
	for _, want := range []string{"1 node ran, 1 cached", "0 nodes ran, 2 cached"} {
		r := mustKiln(t, root, "build", "--progress", "plain", dir)
		if !strings.Contains(r.stderr, ": "+want+"\n") {
			t.Errorf("build summary: %q, want %q", lastLines(r.stderr, 2), want)
		}
	}
	var hist []struct{ Ran, Cached int }
	if err := json.Unmarshal([]byte(mustKiln(t, root, "history", "--format", "json").stdout), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Ran != 0 || hist[0].Cached != 2 || hist[1].Ran != 1 || hist[1].Cached != 1 {
		t.Errorf("kiln history counts (newest first): %+v, want [{0 2} {1 1}]", hist)
	}
}
