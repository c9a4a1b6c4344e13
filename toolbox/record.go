package toolbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
)

// Record is what a build's /.kiln was made of, written down so that it
// can be made again once the build is over and its temporary files are
// gone: kept with a failed step (kiln debug attach). It names what it
// found, not copies of it: a tool whose directory or image has gone
// since cannot be mounted again (see Record.Resolve).
type Record struct {
	Binary string         `json:"binary,omitempty"` // kiln's binary, on the host
	Values map[string]any `json:"values,omitempty"` // the template values
	Tools  []Source       `json:"tools,omitempty"`
}

// Source is where one tool was found: its entry as written and, for a
// directory, the host directory; for an image, its reference and the
// digest it resolved to ("" for scratch).
type Source struct {
	Name   string `json:"name"`
	Entry  string `json:"entry"`
	Dir    string `json:"dir,omitempty"`
	Image  string `json:"image,omitempty"`
	Digest string `json:"digest,omitempty"`
}

// NewRecord records the /.kiln made of binary, values and tools.
func NewRecord(binary string, values map[string]any, tools []Tool) *Record {
	r := &Record{Binary: binary, Values: values}
	for _, t := range tools {
		s := Source{Name: t.Name, Entry: t.Entry, Image: t.Image, Digest: t.Digest}
		if t.Image == "" && len(t.Dirs) == 1 {
			s.Dir = t.Dirs[0]
		}
		r.Tools = append(r.Tools, s)
	}
	return r
}

// Encode returns r as JSON, as ParseRecord reads it.
func (r *Record) Encode() (string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("encoding the toolbox record: %w", err)
	}
	return string(b), nil
}

// ParseRecord reads a record that Encode wrote. Numbers among the values
// stay as written.
func ParseRecord(s string) (*Record, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var r Record
	if err := d.Decode(&r); err != nil {
		return nil, fmt.Errorf("reading the toolbox record: %w", err)
	}
	return &r, nil
}

// ImageDirs returns the layer directories (base first) of the image ref
// that resolved to digest, or an error saying why it cannot.
type ImageDirs func(ctx context.Context, ref, digest string) ([]string, error)

// Resolve returns the recorded tools that can still be mounted: each
// directory that is still one, each image that images still finds (a
// scratch image is an empty directory). For each of the others, it
// returns a warning saying what is left out and why, instead of the tool.
func (r *Record) Resolve(ctx context.Context, images ImageDirs) ([]Tool, []string) {
	var tools []Tool
	var warnings []string
	for _, s := range r.Tools {
		t := Tool{Name: s.Name, Entry: s.Entry, Image: s.Image, Digest: s.Digest}
		var err error
		switch {
		case s.Image != "" && s.Digest != "":
			t.Dirs, err = images(ctx, s.Image, s.Digest)
		case s.Image != "":
			// scratch: an empty directory
		default:
			var fi os.FileInfo
			if fi, err = os.Stat(s.Dir); err == nil && !fi.IsDir() {
				err = fmt.Errorf("%s is no longer a directory", s.Dir)
			}
			t.Dirs = []string{s.Dir}
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("toolbox %q: %v: %s/%s is not mounted", s.Entry, err, Tools, s.Name))
			continue
		}
		tools = append(tools, t)
	}
	return tools, warnings
}
