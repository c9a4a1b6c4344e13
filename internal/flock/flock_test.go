package flock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestExclusive takes a lock, waits on it from a second open file until
// the context ends the wait, then gets it once the first is released.
func TestExclusive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	open := func() *os.File {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b := open(), open()
	if err := Exclusive(context.Background(), a, 10*time.Millisecond); err != nil {
		t.Fatalf("first lock: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := Exclusive(ctx, b, 10*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock while the first is held: %v, want the context's deadline", err)
	}
	a.Close()
	if err := Exclusive(context.Background(), b, 10*time.Millisecond); err != nil {
		t.Fatalf("second lock after the first is released: %v", err)
	}
}
