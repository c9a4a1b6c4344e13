package rootless

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Range is a run of subordinate ids a user may map: Count ids from Start.
type Range struct {
	Start, Count int
}

// Ranges reads the ranges of a subordinate id file (/etc/subuid's form:
// "name-or-id:start:count" a line) that belong to the user of name or
// numeric id, in file order.
func Ranges(r io.Reader, name string, id int) ([]Range, error) {
	var out []Range
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want name:start:count, got %q", n, line)
		}
		if f[0] != name && f[0] != strconv.Itoa(id) {
			continue
		}
		start, err1 := strconv.Atoi(f[1])
		count, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || start < 0 || count <= 0 {
			return nil, fmt.Errorf("line %d: bad range %q", n, line)
		}
		out = append(out, Range{Start: start, Count: count})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Size is how many ids a rootless kiln maps: container ids 0 to 65535,
// as in the images of every distribution.
const Size = 65536

// mapArgs returns the newuidmap/newgidmap arguments (after the pid)
// mapping container id 0 onto self and 1 onward onto ranges, up to Size
// ids in all. complete is false when the ranges hold fewer than Size-1.
func mapArgs(self int, ranges []Range) (args []string, complete bool) {
	args = []string{"0", strconv.Itoa(self), "1"}
	next := 1
	for _, r := range ranges {
		if next >= Size {
			break
		}
		n := min(r.Count, Size-next)
		args = append(args, strconv.Itoa(next), strconv.Itoa(r.Start), strconv.Itoa(n))
		next += n
	}
	return args, next >= Size
}
