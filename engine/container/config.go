package container

import (
	"fmt"

	"github.com/kiln-build/kiln/engine"
)

// Arguments 0 that mark a re-executed kiln as a container's init or as
// its exec helper.
const (
	initArg0   = "kiln-container-init"
	helperArg0 = "kiln-container-exec"
	holdArg0   = "kiln-userns-hold" // holds a user namespace open until stdin closes
)

// File descriptors passed to the init (after stdin, stdout, stderr);
// further ones are named in its initConfig.
const (
	fdConfig = 3 // the init reads its initConfig here
	fdSync   = 4 // the init writes syncMsgs here; close-on-exec ends it
)

// initConfig is what the runtime tells a container's init.
type initConfig struct {
	Rootdir   string         `json:"rootdir"` // host directory to mount the root filesystem on
	Rootfs    []engine.Mount `json:"rootfs"`
	Mounts    []engine.Mount `json:"mounts,omitempty"`
	Hostname  string         `json:"hostname"`
	Network   engine.Network `json:"network"`
	InPod     bool           `json:"inPod,omitempty"` // in a pod's network namespace, whose lo is up
	Process   processConfig  `json:"process"`
	DropMknod bool           `json:"dropMknod,omitempty"` // no device filter: take CAP_MKNOD away
	CtrlFd    int            `json:"ctrlFd,omitempty"`    // the exec helper's control socket, with Spec.Exec
	ConsoleFd int            `json:"consoleFd,omitempty"` // where to send the terminal, with Process.Terminal
	// UserNS is set when the init runs in a user namespace of its own:
	// the runtime has then made the root filesystem and the bind and
	// overlay mounts as idmapped mounts, passed as these descriptors
	// (RootfsFds by Rootfs index, Prepared by Mounts index), and Rootdir
	// is reached through a descriptor of the container's directory.
	UserNS    bool             `json:"userns,omitempty"`
	RootfsFds []int            `json:"rootfsFds,omitempty"`
	Prepared  map[int]prepared `json:"prepared,omitempty"`
}

// prepared is a mount the runtime made, to attach at its target.
type prepared struct {
	Fd   int  `json:"fd"`
	File bool `json:"file,omitempty"` // its source is a file, not a directory
}

// processConfig is the serializable part of engine.Process.
type processConfig struct {
	Args     []string `json:"args"`
	Env      []string `json:"env,omitempty"`
	Cwd      string   `json:"cwd,omitempty"`
	User     string   `json:"user,omitempty"`
	Terminal bool     `json:"terminal,omitempty"`
}

func newProcessConfig(p engine.Process) processConfig {
	return processConfig{Args: p.Args, Env: p.Env, Cwd: p.Cwd, User: p.User, Terminal: p.Terminal}
}

// syncMsg is what the init reports before it execs PID 1.
type syncMsg struct {
	// Stubs are the paths (relative to the root) the init created to
	// mount on; they are removed from the writable layer at Delete.
	Stubs []string `json:"stubs,omitempty"`
	// Parents are the directories the stubs were created in, with their
	// times before, to be restored when the stubs are removed.
	Parents []stubParent `json:"parents,omitempty"`
	// Error is why the init could not start the process, and Code the
	// exit status a shell would give for it (126, 127), if any.
	Error string `json:"error,omitempty"`
	Code  int    `json:"code,omitempty"`
}

// execRequest asks the exec helper to start a process.
type execRequest struct {
	Process   processConfig `json:"process"`
	DropMknod bool          `json:"dropMknod,omitempty"`
}

// execReply reports how an exec'd process ended.
type execReply struct {
	Started bool   `json:"started,omitempty"`
	Code    int    `json:"code"`
	Signal  string `json:"signal,omitempty"`
	Error   string `json:"error,omitempty"`
}

// stubParent is a directory and its times, in nanoseconds since the epoch.
type stubParent struct {
	Path  string `json:"path"` // relative to the root
	Atime int64  `json:"atime"`
	Mtime int64  `json:"mtime"`
	Mode  uint32 `json:"mode"`
	UID   uint32 `json:"uid"`
	GID   uint32 `json:"gid"`
}

// StartError is why a container's process could not be started.
type StartError struct {
	ID   string
	Code int // 126 (cannot execute) or 127 (not found), as a shell; else 0
	Msg  string
}

func (e *StartError) Error() string { return fmt.Sprintf("starting container %s: %s", e.ID, e.Msg) }
