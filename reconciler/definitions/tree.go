package definitions

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/riveredge/tasksync/reconciler"
)

// TenantPattern is the rule for tenant codes, which are directory names.
var TenantPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// maxDirDepth bounds how deep a tenant's directories are walked, which also
// stops symlinked directory cycles that the visited set would not catch.
const maxDirDepth = 32

// maxSymlinkHops is the number of links followed to resolve one path, as
// Linux's MAXSYMLINKS.
const maxSymlinkHops = 40

// ignored reports whether a directory entry is skipped by name: dotfiles
// and dot-directories (this includes the ..data and ..<timestamp> entries
// of a Kubernetes volume, whose visible symlinks are followed instead),
// names starting with "_", and editor and rsync temporaries.
func ignored(name string) bool { return Ignored(name) }

// Ignored reports whether a file or directory name is skipped by the
// loader: dotfiles and dot-directories, names starting with "_", and
// editor and rsync temporaries.
func Ignored(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
		return true
	}
	for _, suf := range []string{"~", ".swp", ".tmp", ".part"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// TenantCodeProblem is what is wrong with a tenant directory's name, or
// "" when it is a valid tenant code.
func TenantCodeProblem(name string) string {
	if TenantPattern.MatchString(name) {
		return ""
	}
	return fmt.Sprintf("directory %q is not a valid tenant code; use lowercase letters, digits and '-' (at most 63, not starting or ending with '-'), or start the name with '.' or '_' to ignore it", name)
}

// misplacedFileProblem is the problem of a definition file at the top of
// the tree.
func misplacedFileProblem(name string) string {
	return "definition files belong in a tenant directory (<tenant>/" + name + "), not at the top of the tree"
}

// HoldsDefinitions reports whether the directory dir on disk has definition
// files of its own, which makes it a tenant directory rather than a tree.
func HoldsDefinitions(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !e.IsDir() && !Ignored(e.Name()) && isDefinitionFile(e.Name()) {
			return true
		}
	}
	return false
}

// isDefinitionFile reports whether a file name holds definitions.
func isDefinitionFile(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// outsideError is a symlink that leads out of the tree.
type outsideError struct{ link, target string }

func (e *outsideError) Error() string {
	return fmt.Sprintf("symlink %s -> %s resolves outside the tree; refused", e.link, e.target)
}

// foreignError is a path that leads out of a tenant's own directory,
// judged by its name alone: nothing outside the directory is looked at,
// so the refusal reads the same whether the target exists or not, and a
// tenant cannot probe another's files with links.
type foreignError struct{}

func (e *foreignError) Error() string {
	return "leads out of the tenant's own directory"
}

// tenantHome is the part of the tree a tenant's paths may resolve into:
// its directory, visible and real, the directories above them, and the
// links that lead from the visible directory to the real one (a
// Kubernetes volume's acme -> ..data/acme and ..data -> ..2026_…).
type tenantHome struct {
	dirs  []string
	links map[string]bool
}

// allows reports whether p, a path in the tree, lies in the home: in one
// of its directories, on the way to one, or on its own links.
func (h *tenantHome) allows(p string) bool {
	for _, d := range h.dirs {
		if within(p, d) || p == "" || strings.HasPrefix(d, p+"/") {
			return true
		}
	}
	return h.links[p]
}

// resolver follows symlinks inside the tree.
type resolver struct {
	fsys    fs.FS
	absRoot string
	// home, if set, confines the resolution to a tenant's directory: a
	// path or a link target (at each hop of a chain) outside it is a
	// *foreignError before anything outside is looked at.
	home *tenantHome
	// crossed collects the links followed, when not nil.
	crossed *[]string
}

// resolve returns the path of p inside the tree with every symlink
// followed. A link whose target is absolute, or climbs above the root, is
// an *outsideError, unless absRoot maps an absolute target back inside.
func resolve(fsys fs.FS, absRoot, p string) (string, error) {
	return resolver{fsys: fsys, absRoot: absRoot}.resolve(p)
}

// resolve is the package's resolve, confined to r.home if set.
func (r resolver) resolve(p string) (string, error) {
	rl, ok := r.fsys.(fs.ReadLinkFS)
	if !ok {
		return p, nil
	}
	parts := strings.Split(p, "/")
	cur := ""
	hops := 0
	for len(parts) > 0 {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if cur == "" {
				return "", &outsideError{link: p, target: ".."}
			}
			cur = parentDir(cur)
			continue
		}
		next := path.Join(cur, part)
		if r.home != nil && !r.home.allows(next) {
			return "", &foreignError{}
		}
		info, err := rl.Lstat(next)
		if err != nil {
			return "", err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return "", errors.New("too many levels of symbolic links")
		}
		target, err := rl.ReadLink(next)
		if err != nil {
			return "", err
		}
		if r.crossed != nil {
			*r.crossed = append(*r.crossed, next)
		}
		from := cur
		if path.IsAbs(target) {
			rel, ok := insideAbs(r.absRoot, target)
			if !ok {
				return "", &outsideError{link: next, target: target}
			}
			from, target = "", rel
		}
		if escapes(from, target) {
			return "", &outsideError{link: next, target: target}
		}
		// Judged by name first: a target outside the home is refused
		// before any of it is looked at.
		if r.home != nil && !r.home.allows(path.Join(from, target)) {
			return "", &foreignError{}
		}
		// A relative target is read from the link's own directory, which
		// is cur; ".." above the root is caught at the top of the loop.
		cur = from
		for _, t := range slices.Backward(strings.Split(target, "/")) {
			parts = append([]string{t}, parts...)
		}
	}
	if cur == "" {
		return ".", nil
	}
	return cur, nil
}

// escapes reports whether target, read relative to dir, climbs above the
// root.
func escapes(dir, target string) bool {
	depth := 0
	if dir != "" {
		depth = strings.Count(dir, "/") + 1
	}
	for _, t := range strings.Split(target, "/") {
		switch t {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

func parentDir(p string) string {
	d := path.Dir(p)
	if d == "." {
		return ""
	}
	return d
}

// insideAbs maps an absolute symlink target under absRoot to a tree path.
func insideAbs(absRoot, target string) (string, bool) {
	if absRoot == "" {
		return "", false
	}
	root := path.Clean(absRoot)
	t := path.Clean(target)
	if t == root {
		return ".", true
	}
	rel, ok := strings.CutPrefix(t, root+"/")
	return rel, ok
}

// fileRef is a definition file found in a tenant directory: the path users
// see and the path it resolves to.
type fileRef struct {
	visible, real string
}

// walker lists a tenant's definition files.
type walker struct {
	res      resolver // confined to the tenant's home
	files    []fileRef
	seen     map[string]bool // real paths of files and directories visited
	problems []treeProblem
	readErr  bool
}

// treeProblem is a problem with the tree itself, at a path.
type treeProblem struct {
	path string
	msg  string
}

func (w *walker) fail(p, format string, args ...any) {
	w.problems = append(w.problems, treeProblem{path: p, msg: fmt.Sprintf(format, args...)})
}

// walk lists the definition files under the directory visible (which
// resolves to real), depth levels below the tenant directory.
func (w *walker) walk(visible, real string, depth int) {
	if depth > maxDirDepth {
		w.fail(visible, "directories nested deeper than %d levels are not read", maxDirDepth)
		return
	}
	if w.seen[real] {
		return
	}
	w.seen[real] = true
	entries, err := fs.ReadDir(w.res.fsys, real)
	if err != nil {
		w.readErr = true
		w.fail(visible, "cannot read directory: %s", ioReason(err))
		return
	}
	for _, e := range entries {
		name := e.Name()
		if ignored(name) {
			continue
		}
		vis, r := visible+"/"+name, real+"/"+name
		mode := e.Type()
		if mode&fs.ModeSymlink != 0 {
			target, err := w.res.resolve(r)
			if err != nil {
				var out *outsideError
				if _, foreign := err.(*foreignError); foreign {
					w.fail(vis, "%s", leadsOut)
					continue
				}
				if !errors.As(err, &out) {
					// A dangling link may be a volume update in progress:
					// treat it as unreadable, not as a deletion.
					w.readErr = true
					if rl, ok := w.res.fsys.(fs.ReadLinkFS); ok {
						if t, lerr := rl.ReadLink(r); lerr == nil {
							w.fail(vis, "cannot resolve symlink (-> %s): %s", t, ioReason(err))
							continue
						}
					}
				}
				w.fail(vis, "%s", symlinkProblem(err))
				continue
			}
			if !w.inside(target) {
				w.fail(vis, "%s", leadsOut)
				continue
			}
			info, err := fs.Stat(w.res.fsys, target)
			if err != nil {
				w.readErr = true
				w.fail(vis, "cannot read symlink target: %s", ioReason(err))
				continue
			}
			r, mode = target, info.Mode().Type()
		}
		if (mode.IsDir() || isDefinitionFile(name)) && reconciler.EscapeText(name) != name {
			// Such a name would forge lines and reach terminals wherever
			// a path is shown (and is no valid text for the database).
			w.fail(vis, "the name holds a control, invisible or non-UTF-8 character (shown escaped); rename it with plain printable characters")
			continue
		}
		switch {
		case mode.IsDir():
			w.walk(vis, r, depth+1)
		case isDefinitionFile(name) && !mode.IsRegular():
			w.fail(vis, "not a regular file (%s); definitions must be plain files", mode)
		case isDefinitionFile(name):
			if w.seen[r] {
				continue // the same file under a second name loads once
			}
			w.seen[r] = true
			w.files = append(w.files, fileRef{visible: vis, real: r})
		}
	}
}

// inside reports whether a resolved path lies in the tenant's own
// directory (its visible or its real one), so that no link makes another
// tenant's definitions load as this one's.
func (w *walker) inside(p string) bool {
	for _, d := range w.res.home.dirs {
		if within(p, d) {
			return true
		}
	}
	return false
}

// leadsOut is the problem of a link out of the tenant's own directory: the
// same words whatever the target is and whether it exists.
const leadsOut = "symlink leads out of the tenant's own directory; refused, a tenant's files must live in its directory"

// ioReason shortens a *fs.PathError to its cause: the path is already in
// the problem.
func ioReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
