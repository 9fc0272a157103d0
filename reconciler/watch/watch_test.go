package watch_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/watch"
)

// next waits for the next change, failing after a deadline.
func next(t *testing.T, ch <-chan watch.Change) watch.Change {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no change within 10s")
		return watch.Change{}
	}
}

func write(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatch(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "acme", "a.yaml"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan watch.Change, 16)
	ready := make(chan struct{})
	w := watch.New(root, watch.Options{Quiet: 100 * time.Millisecond, MaxDelay: time.Second, Ready: func() { close(ready) }})
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, ch) }()
	<-ready

	// Fifty files at once are one change (or very few).
	for i := range 50 {
		write(t, filepath.Join(root, "acme", "sub", fmt.Sprintf("f%02d.yaml", i)))
	}
	c := next(t, ch)
	if !slices.Equal(c.Tenants, []string{"acme"}) || c.Full {
		t.Errorf("change = %+v, want acme", c)
	}
	for extra := 0; ; extra++ {
		select {
		case c := <-ch:
			if extra >= 2 {
				t.Errorf("too many changes for one batch: %+v", c)
			}
			continue
		case <-time.After(500 * time.Millisecond):
		}
		break
	}

	// A tenant directory created later is watched, files in it too.
	write(t, filepath.Join(root, "globex", "deep", "g.yaml"))
	if c := next(t, ch); !slices.Contains(c.Tenants, "globex") {
		t.Errorf("change = %+v, want globex", c)
	}
	write(t, filepath.Join(root, "globex", "deep", "h.yaml"))
	if c := next(t, ch); !slices.Equal(c.Tenants, []string{"globex"}) {
		t.Errorf("change = %+v, want globex", c)
	}

	// A volume swap at the root asks for a full rescan.
	if err := os.Symlink("acme", filepath.Join(root, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "..data_tmp"), filepath.Join(root, "..data")); err != nil {
		t.Fatal(err)
	}
	if c := next(t, ch); !c.Full {
		t.Errorf("change = %+v, want a full rescan", c)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
