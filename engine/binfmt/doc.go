// Package binfmt owns the kernel's binfmt_misc registrations that let a
// build run a foreign platform's programs: qemu user-mode emulators
// registered with the fix-binary flag (F), so that the kernel opens the
// interpreter once, at registration, and a program of the other
// architecture runs inside kiln's containers without the emulator in
// their root filesystem.
//
// [Check] says whether an architecture's programs run here (natively or
// through such a registration) and, when they do not, what to install
// and how to register it; [Install] registers the emulator from the
// definitions that Debian's qemu-user-static ships in /usr/lib/binfmt.d,
// with the F flag, mounting binfmt_misc first if need be.
package binfmt
