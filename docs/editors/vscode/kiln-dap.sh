#!/bin/sh
# VS Code runs this as the kiln debug adapter: kiln dap on stdin/stdout.
# Set KILN_DAP to the command to use instead, e.g. "sudo -n kiln".
exec ${KILN_DAP:-kiln} dap "$@"
