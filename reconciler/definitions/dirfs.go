package definitions

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// DirFS is the tree rooted at the directory root, as os.DirFS, except that
// Open never blocks and never follows a final symlink: it opens with
// O_NONBLOCK, so a FIFO or a device swapped in after the loader checked
// the name opens at once (and is then refused, see readLimited) instead of
// waiting for a writer, and with O_NOFOLLOW, because the loader resolves
// every link itself and opens only resolved paths.
func DirFS(root string) fs.FS {
	return dirFS{FS: os.DirFS(root), root: root}
}

type dirFS struct {
	fs.FS
	root string
}

// Open opens name without blocking and without following a final symlink.
func (d dirFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, err := os.OpenFile(filepath.Join(d.root, filepath.FromSlash(name)), os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		// Report the tree path, not the path on disk.
		if pe, ok := err.(*fs.PathError); ok {
			pe.Path = name
		}
		return nil, err
	}
	return f, nil
}

// Stat, ReadDir, ReadLink and Lstat are os.DirFS's.

func (d dirFS) Stat(name string) (fs.FileInfo, error) { return fs.Stat(d.FS, name) }

func (d dirFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(d.FS, name) }

func (d dirFS) ReadLink(name string) (string, error) { return fs.ReadLink(d.FS, name) }

func (d dirFS) Lstat(name string) (fs.FileInfo, error) { return fs.Lstat(d.FS, name) }

// linkCount is the number of hard links of an opened file, or 1 when the
// file system does not say.
func linkCount(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// NewDirLoader is a new Validator's Loader of the tree on disk at dir.
//
// dir may be, or lie under, a symlink that is swapped atomically to a new
// directory: git-sync's ROOT/current -> .worktrees/<hash>, a Kubernetes
// volume's ..data. Each read (the tenants' listing, a tenant's load)
// checks after itself that dir still leads to the directory it read (one
// stat; a full resolution only when it does not), so a swap is followed:
// the read is made again in the directory the link names now, with
// Options.AbsRoot its real path, a few times at most (see Loader.Tenants,
// Loader.LoadTenant). A link that leads nowhere is a read error, which
// retires nothing. The paths the loader reports (Definition.Source,
// problems) are relative to dir and do not change with a swap.
// opts.Provenance, unless set, follows the link too. dir must resolve
// when the loader is made.
func NewDirLoader(dir string, opts Options) (*Loader, error) {
	given, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.EvalSymlinks(given)
	if err != nil {
		return nil, err
	}
	v, err := NewValidator()
	if err != nil {
		return nil, err
	}
	opts.AbsRoot = filepath.ToSlash(abs)
	if opts.Provenance == nil {
		opts.Provenance = NewProvenance(given)
	}
	l := v.NewLoader(DirFS(abs), opts)
	l.dir = given
	l.settle(abs)
	return l, nil
}

// current is the tree to read: for a tree on disk, where its path
// resolved at the end of the last read, or, when it did not resolve
// then, where it resolves now. A stale answer costs nothing but a read
// again: every read checks after itself that the path still leads where
// it read (moved), which is the one resolution a read costs.
func (l *Loader) current() (treeRoot, error) {
	if l.dir == "" {
		return l.root, nil
	}
	l.mu.Lock()
	root, ok := l.root, l.resolved
	l.mu.Unlock()
	if ok {
		return root, nil
	}
	abs, err := filepath.EvalSymlinks(l.dir)
	if err != nil {
		return treeRoot{}, err
	}
	return l.settle(abs), nil
}

// settle records that the tree's path resolves to abs, and the directory
// there now, and returns the tree there.
func (l *Loader) settle(abs string) treeRoot {
	id := idOf(abs)
	abs = filepath.ToSlash(abs)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.root.abs != abs || l.root.id != id {
		l.root = treeRoot{fsys: DirFS(filepath.FromSlash(abs)), abs: abs, id: id}
	}
	l.resolved = true
	return l.root
}

// dirID is a directory's device and inode.
type dirID struct{ dev, ino uint64 }

// idOf is the dirID of the directory p leads to; zero when it cannot be
// stat'ed.
func idOf(p string) dirID {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return dirID{}
	}
	return dirID{dev: uint64(st.Dev), ino: st.Ino}
}

// moved reports whether the tree's path no longer leads to root, the tree
// a read just read: what was read may be a tree being replaced. The path
// is stat'ed (one call, the kernel following the links); only when it
// leads to another directory is it resolved again.
func (l *Loader) moved(root treeRoot) bool {
	if l.dir == "" {
		return false
	}
	if id := idOf(l.dir); id != (dirID{}) && id == root.id {
		return false
	}
	abs, err := filepath.EvalSymlinks(l.dir)
	if err != nil {
		l.mu.Lock()
		l.resolved = false
		l.mu.Unlock()
		return true
	}
	now := l.settle(abs)
	return now.abs != root.abs || now.id != root.id
}
