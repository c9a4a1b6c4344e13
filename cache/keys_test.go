package cache

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKeys(t *testing.T) {
	ctx := context.Background()
	s, c := newCache(t)
	keys, err := c.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("Keys of an empty cache: %v", keys)
	}
	var want []string
	for _, name := range []string{"a", "b", "c"} {
		r := writeLayer(t, s, keyOf(name), name)
		if err := c.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		want = append(want, r.Key.String())
	}
	sort.Strings(want)
	// Neither a temp file nor a stray name is a record.
	junk := []string{tmpPrefix + "1-abc", "zz/not-a-key.json", want[0][:2] + "/" + want[0] + ".json.tmp"}
	for _, j := range junk {
		p := filepath.Join(c.recordsDir(), j)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete(ctx, keyOf("b")); err != nil {
		t.Fatal(err)
	}
	want = slices.DeleteFunc(want, func(s string) bool { return s == keyOf("b").String() })
	keys, err = c.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(keys))
	for i, k := range keys {
		got[i] = k.String()
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Keys (-want +got):\n%s", d)
	}
	for _, k := range keys {
		if err := c.Verify(ctx, k); err != nil {
			t.Errorf("Verify(%s): %v", k, err)
		}
	}
}
