package definitions_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
)

// repo makes a repository with the tree tasks.d/acme/a.yaml in a temp
// directory and one commit; it returns the repository's path.
func repo(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed for the provenance tests: %v", err)
	}
	dir := t.TempDir()
	deftest.Git(t, dir, "init", "-q")
	write(t, filepath.Join(dir, "tasks.d", "acme", "a.yaml"), "apiVersion: tasksync/v1\n")
	deftest.Git(t, dir, "add", ".")
	deftest.Git(t, dir, "commit", "-q", "-m", "one")
	return dir
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func commit(t *testing.T, dir, msg string) string {
	t.Helper()
	write(t, filepath.Join(dir, "tasks.d", "acme", "a.yaml"), "apiVersion: tasksync/v1\n# "+msg+"\n")
	deftest.Git(t, dir, "commit", "-q", "-am", msg)
	return deftest.Git(t, dir, "rev-parse", "HEAD")
}

// TestProvenanceBranch: a checkout on a branch, its tree a subdirectory;
// a new commit is seen, through the loose ref and after git gc packs it.
func TestProvenanceBranch(t *testing.T) {
	dir := repo(t)
	p := definitions.NewProvenance(filepath.Join(dir, "tasks.d"))
	want := definitions.Revision{Commit: deftest.Git(t, dir, "rev-parse", "HEAD"), Ref: "refs/heads/main"}
	if got := p.Revision(); got != want {
		t.Fatalf("Revision() = %+v, want %+v", got, want)
	}
	want.Commit = commit(t, dir, "two")
	if got := p.Revision(); got != want {
		t.Errorf("after a commit: Revision() = %+v, want %+v", got, want)
	}
	deftest.Git(t, dir, "pack-refs", "--all", "--prune")
	if _, err := os.Stat(filepath.Join(dir, ".git", "refs", "heads", "main")); !os.IsNotExist(err) {
		t.Fatalf("the ref is still loose after pack-refs: %v", err)
	}
	if got := p.Revision(); got != want {
		t.Errorf("packed: Revision() = %+v, want %+v", got, want)
	}
	deftest.Git(t, dir, "checkout", "-q", "-b", "other")
	want.Ref = "refs/heads/other"
	if got := p.Revision(); got != want {
		t.Errorf("another branch: Revision() = %+v, want %+v", got, want)
	}
}

// TestProvenanceDetached: a detached HEAD names its commit.
func TestProvenanceDetached(t *testing.T) {
	dir := repo(t)
	first := deftest.Git(t, dir, "rev-parse", "HEAD")
	commit(t, dir, "two")
	deftest.Git(t, dir, "checkout", "-q", "--detach", first)
	got := definitions.NewProvenance(filepath.Join(dir, "tasks.d")).Revision()
	if want := (definitions.Revision{Commit: first}); got != want {
		t.Errorf("Revision() = %+v, want %+v", got, want)
	}
	if s := got.String(); s != first[:12]+" (detached HEAD)" {
		t.Errorf("String() = %q", s)
	}
}

// TestProvenanceGitSyncWorktree: git-sync's layout, a worktree whose .git
// is a file naming its git directory, reached through a link
// current -> .worktrees/<hash> that a sync swaps to a new worktree.
func TestProvenanceGitSyncWorktree(t *testing.T) {
	root := t.TempDir()
	src := repo(t)
	first := deftest.Git(t, src, "rev-parse", "HEAD")
	deftest.Git(t, root, "clone", "-q", "--bare", src, filepath.Join(root, ".git"))
	second := commit(t, src, "two")
	deftest.Git(t, filepath.Join(root, ".git"), "fetch", "-q", src, "main:main")
	for _, c := range []string{first, second} {
		deftest.Git(t, filepath.Join(root, ".git"), "worktree", "add", "-q", "--detach", filepath.Join(root, ".worktrees", c), c)
	}
	if b, err := os.ReadFile(filepath.Join(root, ".worktrees", first, ".git")); err != nil || !strings.HasPrefix(string(b), "gitdir: ") {
		t.Fatalf("the worktree's .git is not a gitdir file: %q %v", b, err)
	}
	link := filepath.Join(root, "current")
	if err := os.Symlink(filepath.Join(".worktrees", first), link); err != nil {
		t.Fatal(err)
	}
	p := definitions.NewProvenance(filepath.Join(link, "tasks.d"))
	if got := p.Revision(); got.Commit != first || got.Ref != "" {
		t.Fatalf("Revision() = %+v, want %s detached", got, first)
	}
	// The sync swaps the link, by renaming a new one over it.
	tmp := filepath.Join(root, "current.tmp")
	if err := os.Symlink(filepath.Join(".worktrees", second), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	if got := p.Revision(); got.Commit != second {
		t.Errorf("after the swap: Revision() = %+v, want %s", got, second)
	}
	// A worktree on a branch resolves it in the common directory.
	wt := filepath.Join(root, "wt-branch")
	deftest.Git(t, filepath.Join(root, ".git"), "worktree", "add", "-q", "-b", "feature", wt, first)
	if got := definitions.NewProvenance(wt).Revision(); got.Commit != first || got.Ref != "refs/heads/feature" {
		t.Errorf("worktree on a branch: Revision() = %+v, want %s on refs/heads/feature", got, first)
	}
}

// TestProvenanceNone: no repository, an unborn branch, and files that are
// not what git writes give no revision, and no error.
func TestProvenanceNone(t *testing.T) {
	if got := definitions.NewProvenance(t.TempDir()).Revision(); got.Commit != "" {
		t.Errorf("no repository: %+v", got)
	}
	unborn := t.TempDir()
	deftest.Git(t, unborn, "init", "-q")
	if got := definitions.NewProvenance(unborn).Revision(); got.Commit != "" || got.Ref != "refs/heads/main" {
		t.Errorf("unborn branch: %+v, want no commit on refs/heads/main", got)
	}
	// Hostile: a .git file pointing anywhere, a HEAD that is no commit
	// and a ref climbing out of the git directory.
	for name, files := range map[string]map[string]string{
		"gitdir elsewhere":  {".git": "gitdir: /etc\n"},
		"HEAD not a commit": {".git/HEAD": "\x1b[31mnot a commit\n"},
		"ref climbs out":    {".git/HEAD": "ref: refs/../../../etc/passwd\n"},
		"ref not hex":       {".git/HEAD": "ref: refs/heads/main\n", ".git/refs/heads/main": "zzzz\n"},
		"packed not hex":    {".git/HEAD": "ref: refs/heads/main\n", ".git/packed-refs": "nothex refs/heads/main\n"},
		"HEAD a FIFO":       {".git/config": ""}, // opening it would block
		"ref loop":          {".git/HEAD": "ref: refs/heads/a\n", ".git/refs/heads/a": "ref: refs/heads/b\n", ".git/refs/heads/b": "ref: refs/heads/a\n"},
	} {
		dir := t.TempDir()
		for p, c := range files {
			write(t, filepath.Join(dir, p), c)
		}
		if name == "HEAD a FIFO" {
			if err := syscall.Mkfifo(filepath.Join(dir, ".git", "HEAD"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := definitions.NewProvenance(dir).Revision(); got.Commit != "" {
			t.Errorf("%s: Revision() = %+v, want no commit", name, got)
		}
	}
}

// TestLoaderCarriesCommit: a loader of a tree on disk in a checkout
// gives each definition the commit.
func TestLoaderCarriesCommit(t *testing.T) {
	dir := repo(t)
	write(t, filepath.Join(dir, "tasks.d", "acme", "a.yaml"),
		"apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: a}\nspec:\n  trigger: {interval: 5m}\n  type: api_call\n  config: {url: 'https://a.example.com'}\n")
	deftest.Git(t, dir, "commit", "-q", "-am", "valid")
	l, err := definitions.NewDirLoader(filepath.Join(dir, "tasks.d"), definitions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := l.LoadTenant("acme")
	want := deftest.Git(t, dir, "rev-parse", "HEAD")
	if len(res.Definitions) != 1 || res.Definitions[0].Commit != want {
		t.Errorf("definitions = %+v %v, want one at commit %s", res.Definitions, res.Problems, want)
	}
}

// BenchmarkProvenanceRevision: the cost of the commit of an unchanged
// checkout, paid once per tenant load (stat calls, no read).
func BenchmarkProvenanceRevision(b *testing.B) {
	dir := repo(b)
	p := definitions.NewProvenance(filepath.Join(dir, "tasks.d"))
	if p.Revision().Commit == "" {
		b.Fatal("no commit")
	}
	for b.Loop() {
		p.Revision()
	}
}

// TestProvenanceRefusesSymlinkedGitFiles: git writes HEAD, refs and
// packed-refs as regular files; one that is a symlink (to a file holding
// any commit id, anywhere) is not followed.
func TestProvenanceRefusesSymlinkedGitFiles(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "planted")
	write(t, outside, strings.Repeat("ab", 20)+"\n")
	for _, link := range []string{".git/HEAD", ".git/refs/heads/main", ".git/packed-refs"} {
		dir := t.TempDir()
		write(t, filepath.Join(dir, ".git", "HEAD"), "ref: refs/heads/main\n")
		target := outside
		if link == ".git/packed-refs" {
			target = filepath.Join(t.TempDir(), "packed")
			write(t, target, strings.Repeat("ab", 20)+" refs/heads/main\n")
		}
		p := filepath.Join(dir, filepath.FromSlash(link))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		if got := definitions.NewProvenance(dir).Revision(); got.Commit != "" {
			t.Errorf("%s a symlink: Revision() = %+v, want no commit", link, got)
		}
	}
}
