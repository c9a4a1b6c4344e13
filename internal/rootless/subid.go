package rootless

import (
	"fmt"
	"io"
	"strconv"

	"github.com/kiln-build/kiln/internal/subid"
)

// Range is a run of subordinate ids a user may map: Count ids from Start.
type Range struct {
	Start, Count int
}

// Ranges reads the ranges of a subordinate id file (/etc/subuid's form:
// "name-or-id:start:count" a line) that belong to the user of name or
// numeric id, in file order.
func Ranges(r io.Reader, name string, id int) ([]Range, error) {
	es, err := subid.Parse(r)
	if err != nil {
		return nil, err
	}
	return rangesOf(es, name, id)
}

// rangesOf returns the ranges of es that belong to the user of name or
// numeric id; an empty range is an error.
func rangesOf(es []subid.Entry, name string, id int) ([]Range, error) {
	var out []Range
	for _, e := range es {
		if e.Name != name && e.Name != strconv.Itoa(id) {
			continue
		}
		if e.Count == 0 {
			return nil, fmt.Errorf("bad range %s:%d:%d: no ids", e.Name, e.Start, e.Count)
		}
		out = append(out, Range{Start: int(e.Start), Count: int(e.Count)})
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
