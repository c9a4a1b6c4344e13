package owner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Owner names a process.
type Owner struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"` // clock ticks after boot; 0 when unknown
}

// Self returns the owner record of the calling process.
func Self() Owner {
	pid := os.Getpid()
	start, _ := StartTime(pid)
	return Owner{Pid: pid, Start: start}
}

// Of returns the owner record of process pid.
func Of(pid int) (Owner, error) {
	start, err := StartTime(pid)
	if err != nil {
		return Owner{}, err
	}
	return Owner{Pid: pid, Start: start}, nil
}

// Alive reports whether the process still runs (a zombie counts as
// alive: its PID is not yet free).
func (o Owner) Alive() bool {
	if o.Pid <= 0 {
		return false
	}
	start, err := StartTime(o.Pid)
	if err != nil {
		return false
	}
	return o.Start == 0 || start == o.Start
}

// StartTime reads the start time of process pid from /proc/PID/stat.
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("reading start time of process %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces and parentheses: skip to
	// the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("reading start time of process %d: malformed stat", pid)
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("reading start time of process %d: malformed stat", pid)
	}
	return strconv.ParseUint(string(fields[19]), 10, 64)
}

// Write records o in the file path, atomically.
func (o Owner) Write(path string) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing owner record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing owner record: %w", err)
	}
	return nil
}

// Read reads an owner record written by Write.
func Read(path string) (Owner, error) {
	var o Owner
	b, err := os.ReadFile(path)
	if err != nil {
		return o, fmt.Errorf("reading owner record: %w", err)
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("reading owner record %s: %w", path, err)
	}
	return o, nil
}
