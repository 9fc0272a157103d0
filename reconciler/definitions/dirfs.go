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

// NewDirLoader is a new Validator's Loader of the tree on disk at dir,
// with symlinks in dir resolved and opts.AbsRoot set to the result.
func NewDirLoader(dir string, opts Options) (*Loader, error) {
	abs, err := RealPath(dir)
	if err != nil {
		return nil, err
	}
	v, err := NewValidator()
	if err != nil {
		return nil, err
	}
	opts.AbsRoot = filepath.ToSlash(abs)
	if opts.Provenance == nil {
		opts.Provenance = NewProvenance(abs)
	}
	return v.NewLoader(DirFS(abs), opts), nil
}
