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

// swapLink points the symlink link at target as git-sync and the kubelet
// do: a new link renamed over the old one.
func swapLink(t *testing.T, target, link string) {
	t.Helper()
	tmp := link + ".tmp"
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
}

// quiet fails when a change arrives within d.
func quiet(t *testing.T, ch <-chan watch.Change, d time.Duration, what string) {
	t.Helper()
	select {
	case c := <-ch:
		t.Errorf("%s: change %+v, want none", what, c)
	case <-time.After(d):
	}
}

// drain takes the changes that arrive until none has for a while.
func drain(ch <-chan watch.Change) {
	for range 20 {
		select {
		case <-ch:
		case <-time.After(300 * time.Millisecond):
			return
		}
	}
}

// TestWatchFollowsLinkSwap: a tree given as a path through git-sync's link
// (ROOT/current/tasks.d, current -> .worktrees/<hash>) is watched where
// the link leads; a swap of the link is a change of the whole tree, after
// which the new directory is the one watched; a link that leads nowhere
// for a moment is a change too, and so is its target appearing.
func TestWatchFollowsLinkSwap(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, ".worktrees", "aaa", "tasks.d", "acme", "a.yaml"))
	link := filepath.Join(root, "current")
	if err := os.Symlink(filepath.Join(".worktrees", "aaa"), link); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan watch.Change, 16)
	ready := make(chan struct{})
	w := watch.New(filepath.Join(link, "tasks.d"), watch.Options{Quiet: 50 * time.Millisecond, MaxDelay: time.Second, Recheck: time.Hour, Ready: func() { close(ready) }})
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, ch) }()
	<-ready

	// An edit through the link names its tenant.
	write(t, filepath.Join(link, "tasks.d", "acme", "b.yaml"))
	if c := next(t, ch); !slices.Equal(c.Tenants, []string{"acme"}) || c.Full {
		t.Errorf("edit: change = %+v, want acme", c)
	}

	// A sync: a new worktree, the link swapped, the old worktree removed.
	write(t, filepath.Join(root, ".worktrees", "bbb", "tasks.d", "acme", "a.yaml"))
	quiet(t, ch, 300*time.Millisecond, "a new worktree beside the tree")
	swapLink(t, filepath.Join(".worktrees", "bbb"), link)
	if c := next(t, ch); !c.Full {
		t.Errorf("swap: change = %+v, want the whole tree", c)
	}
	if err := os.RemoveAll(filepath.Join(root, ".worktrees", "aaa")); err != nil {
		t.Fatal(err)
	}
	drain(ch) // the removal of the old worktree may be one more change
	// The new worktree is the one watched.
	write(t, filepath.Join(root, ".worktrees", "bbb", "tasks.d", "globex", "g.yaml"))
	if c := next(t, ch); !slices.Equal(c.Tenants, []string{"globex"}) || c.Full {
		t.Errorf("edit after the swap: change = %+v, want globex", c)
	}

	// A link that leads nowhere for a moment, then its target appears.
	swapLink(t, filepath.Join(".worktrees", "ccc"), link)
	if c := next(t, ch); !c.Full {
		t.Errorf("dangling link: change = %+v, want the whole tree", c)
	}
	write(t, filepath.Join(root, ".worktrees", "ccc", "tasks.d", "acme", "a.yaml"))
	if c := next(t, ch); !c.Full {
		t.Errorf("the link's target appeared: change = %+v, want the whole tree", c)
	}
	drain(ch)
	write(t, filepath.Join(link, "tasks.d", "acme", "c.yaml"))
	if c := next(t, ch); !slices.Equal(c.Tenants, []string{"acme"}) || c.Full {
		t.Errorf("edit in the new target: change = %+v, want acme", c)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestWatchRecheck: a swap no watched directory sees (a directory above
// the link's is replaced by one whose link leads elsewhere) is found by
// the periodic recheck.
func TestWatchRecheck(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "v1", "acme", "a.yaml"))
	write(t, filepath.Join(root, "v2", "acme", "a.yaml"))
	mkLink := func(top, target string) {
		if err := os.MkdirAll(filepath.Join(root, top, "links"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(root, target), filepath.Join(root, top, "links", "current")); err != nil {
			t.Fatal(err)
		}
	}
	mkLink("a", "v1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan watch.Change, 16)
	ready := make(chan struct{})
	w := watch.New(filepath.Join(root, "a", "links", "current"), watch.Options{Quiet: 50 * time.Millisecond, MaxDelay: time.Second, Recheck: 300 * time.Millisecond, Ready: func() { close(ready) }})
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, ch) }()
	<-ready
	mkLink("b", "v2")
	if err := os.Rename(filepath.Join(root, "a"), filepath.Join(root, "a-old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "b"), filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	if c := next(t, ch); !c.Full {
		t.Errorf("change = %+v, want the whole tree", c)
	}
	write(t, filepath.Join(root, "v2", "acme", "b.yaml"))
	if c := next(t, ch); !slices.Equal(c.Tenants, []string{"acme"}) || c.Full {
		t.Errorf("edit in v2: change = %+v, want acme", c)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
