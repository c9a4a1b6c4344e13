package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// The BuildKit differential test builds every Dockerfile under
// testdata/dockerfiles/<case>/ with kiln and with BuildKit (buildkitd and
// buildctl, built by scripts/buildkit.sh; its built-in dockerfile.v0
// frontend), from the same busybox base served by an in-process registry
// on 127.0.0.1, and compares the two images: every file's path, type,
// mode (with the setuid, setgid and sticky bits), owner, link target,
// hard-link group, xattrs and content, and every config field that a
// Dockerfile sets (env, cmd, entrypoint, workdir, user, labels, exposed
// ports, volumes, healthcheck, stop signal, shell, onbuild, author).
// Timestamps are not compared: BuildKit stamps the build's time, kiln a
// reproducible one (see TestBuildReproducible).
//
// A case directory holds a Dockerfile (ARG BASE, FROM ${BASE}) and its
// context, and optionally:
//   - setup: a sh script run in a copy of the directory before the build,
//     for what git cannot keep (hard links, empty directories, modes,
//     names git or Go modules refuse);
//   - flags: build flags, one a line: "--target NAME" or
//     "--build-arg K=V";
//   - Dockerfile.parent: built first by both and pushed to the registry;
//     the case's Dockerfile uses it as ${PARENT} (ONBUILD). Its images are
//     compared too;
//   - fails: both must refuse the Dockerfile (the file says why).
//
// In a Dockerfile, @REG@ stands for the registry's host:port (for COPY
// --from=image, where BuildKit expands no variables).
//
// One buildkitd runs for the whole test, with its own root and socket
// under a temp directory, the OCI worker and runc, host network (no RUN
// here touches the network). It is stopped at the end.

// bkKnown are the cases where kiln and BuildKit differ, each with why.
// An entry whose case no longer differs fails the test, so that the list
// stays true: remove it then.
var bkKnown = map[string]string{
	// Deliberate.
	"copy-backslash-name": "deliberate: BuildKit fails with \"/back\\\\slash.txt\": not found, because it sends the context through fsutil with the source as an " +
		"include pattern, where a backslash escapes (frontend/dockerfile/dockerfile2llb/convert_copy.go: IncludePatterns: patterns); kiln copies the file of that name",
	"copy-several-sources-no-slash": "deliberate: kiln refuses `COPY a.txt b.txt /multi` with a line, as the Dockerfile reference says " +
		"(COPY: \"If multiple <src> resources are specified, ... then <dest> must be a directory, and it must end with a slash /\"); " +
		"BuildKit 0.34 copies each source onto the same file /multi, and the last one wins",
	"add-tar-dotdot": "deliberate: kiln refuses an archive member whose name climbs out of the destination (../../escape.txt) and names it; " +
		"BuildKit unpacks in a chroot of the destination (solver/llbsolver/file/unpack.go:57, chrootarchive.Untar), which silently clamps the name, " +
		"where the same library outside a chroot refuses it (github.com/moby/go-archive archive.go:855, breakoutError \"%q is outside of %q\")",

	// Not supported yet: kiln refuses the flag with its file:line.
	"copy-exclude": "not supported: kiln refuses COPY --exclude with its file:line (manifest/dockerfile.go); BuildKit copies all but the excluded paths",
	"copy-parents": "not supported: kiln refuses COPY --parents with its file:line (manifest/dockerfile.go); BuildKit keeps the sources' parent directories",
}

// buildkit is a running buildkitd and the buildctl that talks to it.
type buildkit struct {
	ctl, addr string
}

// startBuildkit builds (or finds cached) BuildKit with
// scripts/buildkit.sh and starts buildkitd allowing plain HTTP to reg.
// It skips the test when BuildKit cannot be built or started.
func startBuildkit(t *testing.T, reg string) *buildkit {
	t.Helper()
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("skipping: runc is not installed (apt-get install -y runc); buildkitd's OCI worker needs it")
	}
	script := filepath.Join(enginetest.RepoRoot(t), "scripts", "buildkit.sh")
	out, err := exec.CommandContext(t.Context(), script, "build").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			stderr = ee.Stderr
		}
		t.Skipf("skipping: BuildKit cannot be built (scripts/buildkit.sh build: %v)\n%s", err, stderr)
	}
	bin := strings.TrimSpace(string(out))
	// A short directory: the socket's path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "kiln-bk-")
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("root = %q\n[worker.oci]\n  enabled = true\n  snapshotter = \"overlayfs\"\n  gc = false\n"+
		"[worker.containerd]\n  enabled = false\n[registry.%q]\n  http = true\n  insecure = true\n",
		filepath.Join(dir, "root"), reg)
	if err := os.WriteFile(filepath.Join(dir, "buildkitd.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "buildkitd.log"))
	if err != nil {
		t.Fatal(err)
	}
	bk := &buildkit{ctl: filepath.Join(bin, "buildctl"), addr: "unix://" + filepath.Join(dir, "bk.sock")}
	cmd := exec.Command(filepath.Join(bin, "buildkitd"), "--config", filepath.Join(dir, "buildkitd.toml"),
		"--addr", bk.addr, "--oci-worker-net", "host")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Skipf("skipping: buildkitd cannot start: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing buildkitd's directory: %v", err)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if exec.Command(bk.ctl, "--addr", bk.addr, "debug", "workers").Run() == nil {
			return bk
		}
		select {
		case <-done:
			l, _ := os.ReadFile(logf.Name())
			t.Skipf("skipping: buildkitd exited at start:\n%s", l)
		default:
		}
		if time.Now().After(deadline) {
			l, _ := os.ReadFile(logf.Name())
			t.Fatalf("buildkitd did not answer in 30 s:\n%s", l)
		}
	}
}

// build runs one buildctl build of dockerfile (a directory holding
// Dockerfile) in ctxDir with flags, exporting an OCI layout directory to
// out and, when push is set, pushing the image to that reference.
func (bk *buildkit) build(ctx context.Context, dockerfile, ctxDir string, flags []string, out, push string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	args := []string{"--addr", bk.addr, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
		"--local", "context=" + ctxDir, "--local", "dockerfile=" + dockerfile,
		"--output", "type=oci,dest=" + out + ",tar=false"}
	if push != "" {
		args = append(args, "--output", "type=image,name="+push+",push=true")
	}
	for i := 0; i+1 < len(flags); i += 2 {
		switch flags[i] {
		case "--target":
			args = append(args, "--opt", "target="+flags[i+1])
		case "--build-arg":
			args = append(args, "--opt", "build-arg:"+flags[i+1])
		}
	}
	o, err := exec.CommandContext(ctx, bk.ctl, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("buildctl build: %w\n%s", err, lastLines(string(o), 15))
	}
	return nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// bkCase is one case directory made ready to build.
type bkCase struct {
	name, ctx, kilnDF, bkDF string
	flags                   []string
	parent                  bool
	fails                   bool
	base                    map[string]diffEntry // the base image's files
}

// prepareCase copies the case directory to a new context, runs its setup
// and writes the Dockerfiles (with @REG@ replaced) for each tool.
func prepareCase(t *testing.T, src, reg string) bkCase {
	t.Helper()
	c := bkCase{name: filepath.Base(src), ctx: filepath.Join(t.TempDir(), "ctx")}
	if out, err := exec.Command("cp", "-a", src, c.ctx).CombinedOutput(); err != nil {
		t.Fatalf("copying the context: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(c.ctx, "setup")); err == nil {
		cmd := exec.Command("sh", "-eu", "setup")
		cmd.Dir = c.ctx
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("setup: %v\n%s", err, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(c.ctx, "flags")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 2 {
				c.flags = append(c.flags, f...)
			}
		}
	}
	_, err := os.Stat(filepath.Join(c.ctx, "fails"))
	c.fails = err == nil
	_, err = os.Stat(filepath.Join(c.ctx, "Dockerfile.parent"))
	c.parent = err == nil
	// Each tool reads its Dockerfile from a directory of its own, outside
	// the context.
	dfs := t.TempDir()
	for f, sub := range map[string]string{"Dockerfile": "", "Dockerfile.parent": "parent"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("@REG@"), []byte(reg))
		for _, tool := range []string{"kiln", "buildkit"} {
			d := filepath.Join(dfs, tool, sub)
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "Dockerfile"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.kilnDF, c.bkDF = filepath.Join(dfs, "kiln"), filepath.Join(dfs, "buildkit")
	return c
}

// kilnBuild runs kiln build, allowing it to fail.
func kilnBuild(t *testing.T, root string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, append([]string{"--root", root, "build", "--frontend", "dockerfile", "--network", "none"}, args...),
		strings.NewReader(""), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// builtPair is what the two tools made of one Dockerfile.
type builtPair struct {
	kiln, bk       v1.Image
	kilnErr, bkErr error
}

// buildBoth builds dockerfile (the name of a file in each tool's
// Dockerfile directory) with both tools at once, pushing the results to
// kilnTag and bkTag in the registry when they are given.
func buildBoth(t *testing.T, root string, bk *buildkit, c bkCase, sub string, flags []string, kilnTag, bkTag, out string) builtPair {
	t.Helper()
	var p builtPair
	var wg sync.WaitGroup
	bkOut := filepath.Join(out, "buildkit")
	wg.Go(func() {
		p.bkErr = bk.build(t.Context(), filepath.Join(c.bkDF, sub), c.ctx, flags, bkOut, bkTag)
	})
	tag := kilnTag
	if tag == "" {
		tag = "bkdiff-" + c.name
	}
	args := append([]string{"-f", filepath.Join(c.kilnDF, sub, "Dockerfile"), "-t", tag}, flags...)
	if kilnTag != "" {
		args = append(args, "--push")
	}
	r := kilnBuild(t, root, append(args, c.ctx)...)
	if r.code != 0 {
		p.kilnErr = fmt.Errorf("kiln build: exit %d\n%s", r.code, lastLines(r.stderr, 15))
	}
	wg.Wait()
	if p.kilnErr == nil {
		p.kiln = kilnImage(t, root, tag, filepath.Join(out, "kiln"))
	}
	if p.bkErr == nil {
		p.bk = layoutImage(t, bkOut)
	}
	return p
}

func TestBuildKitDiff(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: the differential test builds images with kiln and BuildKit")
	}
	enginetest.RequireRoot(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://")
	bk := startBuildkit(t, reg)

	root := newRoot(t)
	mustKiln(t, root, "import", enginetest.Busybox(t), "-t", "busybox", "--cmd", "/bin/sh")
	base := reg + "/busybox:latest"
	mustKiln(t, root, "push", "busybox", base)
	baseTree := flatten(t, kilnImage(t, root, "busybox", filepath.Join(t.TempDir(), "base")))

	cases, dirs := caseDirs(t, "dockerfiles")
	if len(dirs) < 60 {
		t.Errorf("%d cases, want at least 60", len(dirs))
	}
	start := time.Now()
	var mu sync.Mutex
	differ := map[string]bool{}
	for _, d := range dirs {
		name := d.Name()
		t.Run(name, func(t *testing.T) {
			c := prepareCase(t, filepath.Join(cases, name), reg)
			c.base = baseTree
			out := t.TempDir()
			flags := append([]string{"--build-arg", "BASE=" + base}, c.flags...)
			var diffs []string
			if c.parent {
				kp, bp := reg+"/kiln/"+name+"-parent:latest", reg+"/buildkit/"+name+"-parent:latest"
				p := buildBoth(t, root, bk, c, "parent", flags, kp, bp, filepath.Join(out, "parent"))
				if p.kilnErr != nil || p.bkErr != nil {
					t.Fatalf("building the parent: kiln: %v; buildkit: %v", p.kilnErr, p.bkErr)
				}
				diffs = append(diffs, imageDiffs(t, "parent", p.bk, p.kiln)...)
				// Each tool builds on its own parent.
				flagsK := append(slices.Clone(flags), "--build-arg", "PARENT="+kp)
				flagsB := append(slices.Clone(flags), "--build-arg", "PARENT="+bp)
				diffs = append(diffs, buildAndDiff(t, root, bk, c, flagsK, flagsB, out)...)
			} else {
				diffs = append(diffs, buildAndDiff(t, root, bk, c, flags, flags, out)...)
			}
			why, known := bkKnown[name]
			switch {
			case len(diffs) > 0 && known:
				t.Logf("known difference (%s):\n%s", why, strings.Join(diffs, "\n"))
				mu.Lock()
				differ[name] = true
				mu.Unlock()
			case len(diffs) > 0:
				t.Errorf("kiln and BuildKit differ:\n%s", strings.Join(diffs, "\n"))
			case known:
				t.Errorf("listed in bkKnown (%s) but kiln and BuildKit agree now: remove the entry", why)
			}
		})
	}
	t.Logf("%d cases in %s, %d known differences", len(dirs), time.Since(start).Round(time.Millisecond), len(differ))
}

// buildAndDiff builds the case's Dockerfile with both tools (kiln with
// flagsK, BuildKit with flagsB) and returns their differences.
func buildAndDiff(t *testing.T, root string, bk *buildkit, c bkCase, flagsK, flagsB []string, out string) []string {
	t.Helper()
	// The two tools differ only in PARENT, which is a build arg: build
	// them apart when they differ.
	var p builtPair
	if slices.Equal(flagsK, flagsB) {
		p = buildBoth(t, root, bk, c, "", flagsK, "", "", out)
	} else {
		pk := buildBoth(t, root, bk, c, "", flagsK, "", "", filepath.Join(out, "k"))
		pb := buildBoth(t, root, bk, c, "", flagsB, "", "", filepath.Join(out, "b"))
		p = builtPair{kiln: pk.kiln, kilnErr: pk.kilnErr, bk: pb.bk, bkErr: pb.bkErr}
	}
	switch {
	case c.fails && p.kilnErr != nil && p.bkErr != nil:
		t.Logf("both refuse, as expected:\nkiln: %v\nbuildkit: %v", p.kilnErr, p.bkErr)
		return nil
	case c.fails:
		return []string{fmt.Sprintf("the case is marked fails; kiln: %v; buildkit: %v", errOrOK(p.kilnErr), errOrOK(p.bkErr))}
	case p.kilnErr != nil && p.bkErr == nil:
		return []string{fmt.Sprintf("kiln: %v\nbuildkit: built, adding to the base:\n%s", p.kilnErr, added(t, p.bk, c.base))}
	case p.kilnErr == nil && p.bkErr != nil:
		return []string{fmt.Sprintf("kiln: built, adding to the base:\n%s\nbuildkit: %v", added(t, p.kiln, c.base), p.bkErr)}
	case p.kilnErr != nil:
		return []string{fmt.Sprintf("both fail (the case is not marked fails)\nkiln: %v\nbuildkit: %v", p.kilnErr, p.bkErr)}
	}
	return imageDiffs(t, "image", p.bk, p.kiln)
}

func errOrOK(err error) string {
	if err == nil {
		return "built"
	}
	return err.Error()
}

// added lists the files of img that base does not hold as they are.
func added(t *testing.T, img v1.Image, base map[string]diffEntry) string {
	t.Helper()
	tree := flatten(t, img)
	var out []string
	for p, e := range tree {
		if b, ok := base[p]; !ok || b != e {
			out = append(out, fmt.Sprintf("  %s %+v", p, e))
		}
	}
	for p := range base {
		if _, ok := tree[p]; !ok {
			out = append(out, "  removed "+p)
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// imageDiffs compares BuildKit's image with kiln's.
func imageDiffs(t *testing.T, what string, bkImg, kImg v1.Image) []string {
	t.Helper()
	var diffs []string
	if d := cmp.Diff(flatten(t, bkImg), flatten(t, kImg)); d != "" {
		diffs = append(diffs, fmt.Sprintf("%s: the file trees differ (-buildkit +kiln):\n%s", what, d))
	}
	if d := cmp.Diff(configOf(t, bkImg), configOf(t, kImg), cmpopts.EquateEmpty()); d != "" {
		diffs = append(diffs, fmt.Sprintf("%s: the configs differ (-buildkit +kiln):\n%s", what, d))
	}
	return diffs
}
