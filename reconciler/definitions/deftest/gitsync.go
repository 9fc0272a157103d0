package deftest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Git runs git in dir with a fixed identity and no user or system
// configuration, and returns its trimmed output; a failure fails t.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com",
		"-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// GitSync is a checkout kept as git-sync (v4) keeps it: Root/.git a bare
// clone of the repository Src, each synced commit a worktree
// Root/.worktrees/<hash>, and Link (Root/current) a link to the one in
// use.
type GitSync struct {
	t               testing.TB
	Src, Root, Link string
	cur             string // the worktree Link leads to
}

// NewGitSync commits files (path in the repository → content) in a new
// repository and syncs it.
func NewGitSync(t testing.TB, files map[string]string) *GitSync {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed to test a git-sync checkout: %v", err)
	}
	g := &GitSync{t: t, Src: t.TempDir(), Root: t.TempDir()}
	g.Link = filepath.Join(g.Root, "current")
	Git(t, g.Src, "init", "-q")
	g.Commit(files)
	Git(t, g.Root, "clone", "-q", "--bare", g.Src, filepath.Join(g.Root, ".git"))
	g.Sync()
	return g
}

// Current is the worktree the link leads to after the last Sync.
func (g *GitSync) Current() string { return g.cur }

// Commit writes files ("" removes one) in the repository, commits, and
// returns the commit.
func (g *GitSync) Commit(files map[string]string) string {
	g.t.Helper()
	for p, content := range files {
		if content == "" {
			if err := os.Remove(filepath.Join(g.Src, p)); err != nil {
				g.t.Fatal(err)
			}
			continue
		}
		WriteFile(g.t, filepath.Join(g.Src, p), content)
	}
	Git(g.t, g.Src, "add", "-A")
	Git(g.t, g.Src, "commit", "-q", "-m", "change")
	return Git(g.t, g.Src, "rev-parse", "HEAD")
}

// Sync does what git-sync does on a new commit: fetch, a worktree of the
// commit, the link swapped by renaming a new one over it, the old
// worktree deleted. It returns the commit now in use.
func (g *GitSync) Sync() string {
	g.t.Helper()
	bare := filepath.Join(g.Root, ".git")
	Git(g.t, bare, "fetch", "-q", g.Src, "+main:main")
	hash := Git(g.t, bare, "rev-parse", "main")
	wt := filepath.Join(g.Root, ".worktrees", hash)
	Git(g.t, bare, "worktree", "add", "-q", "--detach", wt, hash)
	g.Point(filepath.Join(".worktrees", hash))
	if old := g.cur; old != "" && old != wt {
		if err := os.RemoveAll(old); err != nil {
			g.t.Fatal(err)
		}
		Git(g.t, bare, "worktree", "prune")
	}
	g.cur = wt
	return hash
}

// Point swaps the link to target (relative to Root), as git-sync does:
// a new link renamed over it.
func (g *GitSync) Point(target string) {
	g.t.Helper()
	tmp := filepath.Join(g.Root, "tmp-link")
	if err := os.Symlink(target, tmp); err != nil {
		g.t.Fatal(err)
	}
	if err := os.Rename(tmp, g.Link); err != nil {
		g.t.Fatal(err)
	}
}
