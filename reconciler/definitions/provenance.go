package definitions

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
)

// Revision is the git commit a tree on disk is at.
type Revision struct {
	// Commit is the full hexadecimal id of the commit HEAD names; "" when
	// the tree is in no git checkout, or its HEAD names no commit yet.
	Commit string `json:"commit,omitempty"`
	// Ref is the branch HEAD points to ("refs/heads/main"); "" for a
	// detached HEAD (as git-sync checks out).
	Ref string `json:"ref,omitempty"`
}

// Short is the commit's first 12 digits, or "".
func (r Revision) Short() string {
	if len(r.Commit) > 12 {
		return r.Commit[:12]
	}
	return r.Commit
}

// Provenance finds the git commit a tree on disk is at, the way Flux and
// Argo CD show the revision they applied: it reads the checkout's files
// (.git, HEAD, the ref HEAD names, packed-refs) directly, without running
// git, and reads them again only when one of them changed (by its stamp:
// inode, size, times), so a reconcile costs a few stat calls. It knows
//
//   - a checkout whose .git directory is in the tree's directory or one
//     above it;
//   - a worktree, whose .git is a file "gitdir: <dir>" (git worktree add,
//     and git-sync, whose link `current -> .worktrees/<hash>` is resolved
//     first: the commit is that of the worktree the link names now);
//   - a detached HEAD (a commit id in HEAD), a branch (a loose ref, or one
//     in packed-refs).
//
// Anything else (no .git, an unborn branch, a file that is not what git
// writes, a git file that is a symlink, a FIFO or a device) is no
// revision, never an error: provenance is information, and a tree is
// served whether it has one or not. Nothing a file says is shown unless
// it is a well-formed commit id or ref name.
//
// The search for .git goes up from the tree's directory, as git's does (a
// tree is often a subdirectory of its repository): the commit recorded is
// therefore only as trustworthy as the directories above the tree. Whoever
// can write to one of them can put a .git there that names any commit;
// keep the tree's parents writable by the operator alone.
type Provenance struct {
	dir string

	mu     sync.Mutex
	stamps []pathStamp // what the cached revision was read from
	rev    Revision
}

// NewProvenance returns the Provenance of the tree in dir.
func NewProvenance(dir string) *Provenance { return &Provenance{dir: dir} }

// pathStamp is what the file system says of a path: equal stamps, the
// same file content (git replaces its files by renaming new ones over).
type pathStamp struct {
	path                 string
	exists               bool
	dev, ino             uint64
	size                 int64
	mtimeNsec, ctimeNsec int64
	link                 string // a symlink's target, for the tree's path
}

func stampPath(p string) pathStamp {
	info, err := os.Lstat(p)
	if err != nil {
		return pathStamp{path: p}
	}
	s := pathStamp{path: p, exists: true, size: info.Size()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino, s.mtimeNsec, s.ctimeNsec = uint64(st.Dev), st.Ino, st.Mtim.Nano(), st.Ctim.Nano()
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		s.link, _ = os.Readlink(p)
	}
	return s
}

// Limits on what is read: git's own files are small; a packed-refs of a
// repository with very many refs is read line by line up to its limit.
const (
	maxGitFileSize    = 4 << 10
	maxPackedRefsSize = 64 << 20
	maxRefHops        = 5
	maxGitDirLevels   = 64
)

var (
	commitPattern = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	refPattern    = regexp.MustCompile(`^refs/[A-Za-z0-9._/+-]{1,250}$`)
)

// Revision returns the commit the tree is at now.
func (p *Provenance) Revision() Revision {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stamps != nil && p.unchanged() {
		return p.rev
	}
	r := &gitReader{}
	p.rev = r.revision(p.dir)
	p.stamps = r.stamps
	return p.rev
}

// unchanged reports whether every path the cached revision was read from
// stamps as it did.
func (p *Provenance) unchanged() bool {
	for _, s := range p.stamps {
		if stampPath(s.path) != s {
			return false
		}
	}
	return true
}

// gitReader reads a revision, stamping every path it looked at (found or
// not: a loose ref that appears later changes the answer too).
type gitReader struct {
	stamps []pathStamp
}

func (r *gitReader) stamp(p string) pathStamp {
	s := stampPath(p)
	r.stamps = append(r.stamps, s)
	return s
}

// read returns a small git file's content, trimmed, stamping it.
func (r *gitReader) read(p string) (string, bool) {
	if s := r.stamp(p); !s.exists {
		return "", false
	}
	b, err := readGitFile(p, maxGitFileSize)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// openGitFile opens a git file for reading, only if it is a regular
// file: opened without following a final symlink (git writes none of
// these files as one) and without blocking (a FIFO or a device put there,
// or swapped in after a stat, does not hang the open), then checked by
// fstat on what was opened.
func openGitFile(p string) (*os.File, error) {
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrInvalid}
	}
	return f, nil
}

func readGitFile(p string, limit int64) ([]byte, error) {
	f, err := openGitFile(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

func (r *gitReader) revision(dir string) Revision {
	// The tree's path, and every link on the way to its real one (git-sync
	// swaps the link `current` to a new worktree), are stamped.
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Revision{}
	}
	for d := abs; ; d = filepath.Dir(d) {
		r.stamp(d)
		if d == filepath.Dir(d) {
			break
		}
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return Revision{}
	}
	gitDir, ok := r.findGitDir(real)
	if !ok {
		return Revision{}
	}
	common := gitDir
	if c, ok := r.read(filepath.Join(gitDir, "commondir")); ok && c != "" {
		if !filepath.IsAbs(c) {
			c = filepath.Join(gitDir, c)
		}
		common = filepath.Clean(c)
	}
	head, ok := r.read(filepath.Join(gitDir, "HEAD"))
	if !ok {
		return Revision{}
	}
	if commitPattern.MatchString(head) {
		return Revision{Commit: head} // detached
	}
	ref, ok := strings.CutPrefix(head, "ref: ")
	if !ok || !refPattern.MatchString(ref) || strings.Contains(ref, "..") {
		return Revision{}
	}
	branch := ref
	for range maxRefHops {
		commit, next, ok := r.resolveRef(gitDir, common, ref)
		switch {
		case !ok:
			return Revision{Ref: branch} // an unborn branch
		case commit != "":
			return Revision{Commit: commit, Ref: branch}
		}
		ref = next
	}
	return Revision{Ref: branch}
}

// findGitDir looks for .git in dir and the directories above it and
// returns the git directory it is or names.
func (r *gitReader) findGitDir(dir string) (string, bool) {
	for range maxGitDirLevels {
		dotGit := filepath.Join(dir, ".git")
		s := r.stamp(dotGit)
		if s.exists {
			info, err := os.Stat(dotGit)
			if err != nil {
				return "", false
			}
			if info.IsDir() {
				return dotGit, true
			}
			content, ok := r.read(dotGit)
			target, found := strings.CutPrefix(content, "gitdir: ")
			if !ok || !found || target == "" {
				return "", false
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(dir, target)
			}
			return filepath.Clean(target), true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
	return "", false
}

// resolveRef reads the ref: its commit, or the ref it points to in turn;
// ok is false when it exists nowhere. A worktree's own refs (HEAD's, and
// refs/worktree/) are in its git directory, the others in the common one.
func (r *gitReader) resolveRef(gitDir, common, ref string) (commit, next string, ok bool) {
	dirs := []string{common}
	if gitDir != common {
		dirs = []string{gitDir, common}
	}
	for _, d := range dirs {
		content, found := r.read(filepath.Join(d, filepath.FromSlash(ref)))
		if !found {
			continue
		}
		if commitPattern.MatchString(content) {
			return content, "", true
		}
		if n, isRef := strings.CutPrefix(content, "ref: "); isRef && refPattern.MatchString(n) && !strings.Contains(n, "..") {
			return "", n, true
		}
		return "", "", false
	}
	c, found := r.packedRef(common, ref)
	return c, "", found
}

// packedRef looks the ref up in the common directory's packed-refs.
func (r *gitReader) packedRef(common, ref string) (string, bool) {
	p := filepath.Join(common, "packed-refs")
	if s := r.stamp(p); !s.exists {
		return "", false
	}
	f, err := openGitFile(p)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxPackedRefsSize))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	suffix := []byte(" " + ref)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] == '#' || line[0] == '^' || !bytes.HasSuffix(line, suffix) {
			continue
		}
		commit := string(line[:len(line)-len(suffix)])
		if commitPattern.MatchString(commit) {
			return commit, true
		}
		return "", false
	}
	return "", false
}

// String is the revision as plan and the logs show it: "1a2b3c4d5e6f
// (refs/heads/main)", "1a2b3c4d5e6f (detached)", or "no git commit".
func (r Revision) String() string {
	switch {
	case r.Commit == "":
		return "no git commit"
	case r.Ref == "":
		return r.Short() + " (detached HEAD)"
	}
	return fmt.Sprintf("%s (%s)", r.Short(), r.Ref)
}
