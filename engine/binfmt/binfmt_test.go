package binfmt

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func foreign() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

func TestCheck(t *testing.T) {
	q := qemuNames[foreign()]
	for _, tc := range []struct {
		name     string
		register bool   // binfmt_misc is mounted
		entry    string // the emulator's entry; "" for none
		want     string // in the error; "" for nil
	}{
		{"not mounted", false, "", "binfmt_misc is not mounted"},
		{"not registered", true, "", "no binfmt_misc registration qemu-" + q},
		{"disabled", true, "disabled\ninterpreter /usr/bin/qemu\nflags: POF\n", "is disabled"},
		{"without F", true, "enabled\ninterpreter /usr/bin/qemu\nflags: PO\n", "lacks the fix-binary flag F"},
		{"registered", true, "enabled\ninterpreter /usr/bin/qemu\nflags: POF\noffset 0\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Paths{Misc: t.TempDir(), Defs: t.TempDir()}
			if tc.register {
				os.WriteFile(filepath.Join(p.Misc, "register"), nil, 0o200)
			}
			if tc.entry != "" {
				os.WriteFile(filepath.Join(p.Misc, "qemu-"+q), []byte(tc.entry), 0o644)
			}
			err := Check(p, foreign())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v, want nil", err)
				}
				return
			}
			var me *MissingError
			if !errors.As(err, &me) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: %v, want a *MissingError saying %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "apt-get install qemu-user-static") {
				t.Errorf("the error does not say which package to install: %v", err)
			}
		})
	}
	if err := Check(Paths{Misc: t.TempDir()}, runtime.GOARCH); err != nil {
		t.Errorf("Check of the host's architecture: %v", err)
	}
}

func TestWithFixBinary(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{":qemu-aarch64:M::\\x7f:\\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OP\n", ":qemu-aarch64:M::\\x7f:\\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF", ""},
		{"# comment\n:qemu-aarch64:M::\\x7f:\\xff:/q:OPF\n", ":qemu-aarch64:M::\\x7f:\\xff:/q:OPF", ""},
		{":qemu-aarch64:M::\\x7f:\\xff:/q:\n", ":qemu-aarch64:M::\\x7f:\\xff:/q:F", ""},
		{":too:few:fields\n", "", "7 fields"},
		{"# only a comment\n", "", "no registration line"},
	} {
		got, err := withFixBinary(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("withFixBinary(%q): %q, %v; want an error saying %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("withFixBinary(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
