package rootless

// outside lists the commands, as kiln's first argument, that never touch
// the store, a mount or a container: they print and end, so they run as
// the user, without the user namespace (whose setuid id-mapping helpers
// and second start cost about as much as the command itself).
// Completion's hidden __complete may list the store's images: not here.
var outside = map[string]bool{
	"version":    true,
	"help":       true,
	"completion": true,
	"--help":     true,
	"-h":         true,
}

// needsNamespace reports whether kiln run with args (os.Args[1:]) must
// enter the user namespace. Only the first argument is looked at: with
// a global flag before the command, or any other command, it must.
func needsNamespace(args []string) bool {
	return len(args) > 0 && !outside[args[0]]
}
