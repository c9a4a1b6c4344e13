package progress

import "strconv"

// Count says n of noun, plural-aware: Count(1, "node") is "1 node",
// Count(2, "node") "2 nodes". noun takes an s in the plural.
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
