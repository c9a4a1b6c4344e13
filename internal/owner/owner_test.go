package owner

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestSelfAlive(t *testing.T) {
	o := Self()
	if o.Pid != os.Getpid() || o.Start == 0 {
		t.Fatalf("Self() = %+v, want this pid with a start time", o)
	}
	if !o.Alive() {
		t.Fatal("Self().Alive() = false")
	}
	reused := Owner{Pid: o.Pid, Start: o.Start + 1}
	if reused.Alive() {
		t.Fatal("an owner with another start time (a reused pid) is reported alive")
	}
}

func TestDeadProcess(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	o, err := Of(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if o.Alive() {
		t.Fatalf("process %d was reaped but is reported alive", o.Pid)
	}
	if (Owner{}).Alive() {
		t.Fatal("the zero Owner is reported alive")
	}
}

func TestWriteRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "owner")
	want := Owner{Pid: 42, Start: 7}
	if err := want.Write(p); err != nil {
		t.Fatal(err)
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Read = %+v, want %+v", got, want)
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("Read of a missing file: no error")
	}
}
