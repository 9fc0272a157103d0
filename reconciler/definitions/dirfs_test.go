package definitions_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
)

// swapFS replaces a file by a FIFO right after the loader stats it: the
// race an attacker wins by swapping names in a loop.
type swapFS struct {
	fs.FS
	root, victim string
}

func (s swapFS) Stat(name string) (fs.FileInfo, error) {
	info, err := fs.Stat(s.FS, name)
	if name == s.victim && err == nil {
		p := filepath.Join(s.root, name)
		if rerr := os.Remove(p); rerr == nil {
			_ = syscall.Mkfifo(p, 0o644)
		}
	}
	return info, err
}

func (s swapFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(s.FS, name) }
func (s swapFS) ReadLink(name string) (string, error)       { return fs.ReadLink(s.FS, name) }
func (s swapFS) Lstat(name string) (fs.FileInfo, error)     { return fs.Lstat(s.FS, name) }

// loadWithin loads tenant acme of fsys, failing the test if that takes
// longer than d (it would block forever opening a FIFO).
func loadWithin(t *testing.T, fsys fs.FS, d time.Duration) *reconciler.TenantTree {
	t.Helper()
	done := make(chan *reconciler.TenantTree, 1)
	go func() { done <- newValidator(t).NewLoader(fsys, definitions.Options{}).LoadTenant("acme") }()
	select {
	case r := <-done:
		return r
	case <-time.After(d):
		t.Fatalf("loading blocked for %v", d)
		return nil
	}
}

// TestFIFOSwappedInAfterStat: a FIFO put in place of a definition file
// between the loader's stat and its open is refused at once, not waited
// on.
func TestFIFOSwappedInAfterStat(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "acme"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "acme", "x.yaml"), []byte(deftest.Task{Code: "x"}.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r := loadWithin(t, swapFS{FS: definitions.DirFS(root), root: root, victim: "acme/x.yaml"}, 10*time.Second)
	got := messages(r.Problems)
	if !strings.Contains(got, "acme/x.yaml: not a regular file") {
		t.Errorf("problems = %q, want the swapped file refused as not a regular file", got)
	}
	if len(r.Definitions) != 0 {
		t.Errorf("definitions = %v, want none from a FIFO", codes(r))
	}
}

// TestHardLinkedFileRefused: a definition or script file with a second
// hard link is refused without its content being quoted.
func TestHardLinkedFileRefused(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("root:SECRETHASH:19000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "acme"), 0o755); err != nil {
		t.Fatal(err)
	}
	wf := "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: py}\nspec: {trigger: {interval: 5m}, type: python_script, config: {file: s.py}}\n"
	if err := os.WriteFile(filepath.Join(root, "acme", "py.yaml"), []byte(wf), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"x.yaml", "s.py"} {
		if err := os.Link(outside, filepath.Join(root, "acme", name)); err != nil {
			t.Skipf("no hard links here: %v", err)
		}
	}
	r := loadWithin(t, definitions.DirFS(root), 10*time.Second)
	got := wantProblems(t, r.Problems, "acme/x.yaml: the file has 3 hard links; refused", `script "s.py": the file has 3 hard links; refused`)
	if strings.Contains(got, "SECRETHASH") {
		t.Errorf("problems quote the linked file:\n%s", got)
	}
	if r.ReadError {
		t.Error("ReadError = true, want a refusal, not an unreadable tenant")
	}
}
