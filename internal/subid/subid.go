package subid

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// Entry is one line of a subordinate id file: Count host ids from Start
// for the user (or group) Name, which may be a name or a numeric id.
type Entry struct {
	Name         string
	Start, Count uint64
}

// Parse reads the entries of a subordinate id file in file order,
// skipping blank lines and # comments. A line that is not
// name:start:count with 32-bit numbers is an error naming its line.
func Parse(r io.Reader) ([]Entry, error) {
	var out []Entry
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
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("line %d: bad range %q", n, line)
		}
		out = append(out, Entry{Name: f[0], Start: start, Count: count})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Read parses the file at path; a missing file has no entries.
func Read(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading subordinate ids: %w", err)
	}
	defer f.Close()
	es, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return es, nil
}
