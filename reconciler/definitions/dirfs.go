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
// volume's ..data. Its path is resolved again at every read (one
// filepath.EvalSymlinks: the tenants' listing and each tenant's load
// read the directory the link names then, with Options.AbsRoot its real
// path), so a swap is followed; a read during which the link moved is
// read again (see Loader.Tenants, Loader.LoadTenant), and a link that
// leads nowhere is a read error, which retires nothing. The paths the
// loader reports (Definition.Source, problems) are relative to dir and
// do not change with a swap. opts.Provenance, unless set, follows the
// link too. dir must resolve when the loader is made.
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
	return l, nil
}

// current is the tree to read now: for a tree on disk, where its path
// resolves at this moment.
func (l *Loader) current() (treeRoot, error) {
	if l.dir == "" {
		return l.root, nil
	}
	abs, err := filepath.EvalSymlinks(l.dir)
	if err != nil {
		return treeRoot{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.root.abs != filepath.ToSlash(abs) {
		l.root = treeRoot{fsys: DirFS(abs), abs: filepath.ToSlash(abs)}
	}
	return l.root, nil
}

// moved reports whether the tree's path no longer resolves to root, the
// tree a read just read: what was read may be a tree being replaced.
func (l *Loader) moved(root treeRoot) bool {
	if l.dir == "" {
		return false
	}
	abs, err := filepath.EvalSymlinks(l.dir)
	return err != nil || filepath.ToSlash(abs) != root.abs
}
