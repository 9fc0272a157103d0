package reconciler_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler/waittest"
)

// TestResyncCatchesMissedChange: a file change no watcher reported (here
// none runs), which keeps the file's size and mtime, is applied by the
// next periodic resync, although resyncs reuse the parsed results of
// unchanged files: the rewrite changed the file's ctime.
func TestResyncCatchesMissedChange(t *testing.T) {
	r := newRig(t, map[string]string{"acme/tasks.yaml": controllerTask("nightly", "0 2 * * *")},
		rigOptions{reuse: time.Hour, resync: 200 * time.Millisecond})
	r.run(t)
	path := filepath.Join(r.dir, "acme", "tasks.yaml")
	old, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// A result is kept once its file is over a second old: wait until
	// resyncs reuse it.
	waittest.For(t, "a resync reusing the parsed file", 10*time.Second, func() bool {
		_, reused := r.tree.FileStats()
		return reused > 0
	})
	parsedBefore, _ := r.tree.FileStats()

	data := controllerTask("nightly", "0 7 * * *")
	if int64(len(data)) != old.Size() {
		t.Fatal("the new content must keep the size")
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, old.ModTime(), old.ModTime()); err != nil {
		t.Fatal(err)
	}
	now, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if now.Size() != old.Size() || !now.ModTime().Equal(old.ModTime()) || now.Sys().(*syscall.Stat_t).Ino != old.Sys().(*syscall.Stat_t).Ino {
		t.Fatal("the rewrite changed the size, mtime or inode; only the ctime may tell")
	}
	waittest.For(t, "the silent change applied by a resync", 10*time.Second, func() bool {
		defs, err := r.st.Definitions(context.Background(), "acme")
		return err == nil && len(defs) == 1 && defs[0].Spec.Trigger.Cron == "0 7 * * *"
	})
	if parsed, _ := r.tree.FileStats(); parsed == parsedBefore {
		t.Error("the change was applied without the file being parsed again")
	}
}
