package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/engine/binfmt"
)

func newBinfmtCommand(a *app) *cobra.Command {
	var install bool
	c := &cobra.Command{
		Use:   "binfmt [--install] ARCH...",
		Short: "Check (or register) the qemu emulation that builds for another architecture need",
		Long: `Binfmt says, for each architecture (a GOARCH: arm64, amd64, arm, …), whether
its programs run here: natively, or through qemu user-mode emulation
registered in binfmt_misc with the fix-binary flag F (which run steps of a
foreign platform need). --install registers qemu-user-static's emulator
with the F flag, mounting binfmt_misc if need be (root only).`,
		Example: `  kiln binfmt arm64
  kiln binfmt --install arm64`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := binfmt.DefaultPaths()
			var failed error
			for _, arch := range args {
				var err error
				if install {
					err = binfmt.Install(p, arch)
				} else {
					err = binfmt.Check(p, arch)
				}
				if err != nil {
					fmt.Fprintf(a.stderr, "%s: %v\n", arch, err)
					failed = withCode(exitFailed, fmt.Errorf("%s programs cannot run here", arch))
					continue
				}
				how := "emulated (qemu, binfmt_misc, flag F)"
				if binfmt.Native(arch) {
					how = "native"
				}
				fmt.Fprintf(a.stdout, "%s: %s\n", arch, how)
			}
			return failed
		},
	}
	c.Flags().BoolVar(&install, "install", false, "register the emulator of each ARCH (root)")
	return c
}
