package definitions

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/riveredge/tasksync/reconciler"
)

// Role is what a path given to a command is: a tree, a tenant directory,
// a part of one, or a file.
type Role string

// The roles of a path.
const (
	// RoleTree: a directory whose subdirectories are tenants, as the
	// daemon reads --dir.
	RoleTree Role = "tree"
	// RoleTenant: one tenant's directory.
	RoleTenant Role = "tenant"
	// RoleTenantPart: a directory or file inside a tenant directory of
	// the tree, checked with its whole tenant.
	RoleTenantPart Role = "part of a tenant"
	// RoleFile: a definition file outside the tree, of the tenant named
	// by its directory.
	RoleFile Role = "file"
	// RoleTopFile: a file at the top of the tree, where no definition
	// belongs.
	RoleTopFile Role = "file at the top of the tree"
	// RoleIgnored: a file inside the tree whose name the loader skips.
	RoleIgnored Role = "ignored"
)

// PathRole is what ClassifyPath decided of a path, and why.
type PathRole struct {
	Role Role
	// Tenant is the tenant of a tenant directory, a part of one or a file
	// (for RoleTopFile, the file's name).
	Tenant string
	// Why says, in a few words, why the path has its role.
	Why string
	// Hint, when set, says what to pass for another reading.
	Hint string

	inTree  bool   // the path is inside the tree
	treeAbs string // the tree's real path, when inTree
	rel     string // the path relative to the tree, when inTree
}

// maxProbeEntries bounds the directory entries ClassifyPath looks at
// below a directory outside the tree.
const maxProbeEntries = 10000

// ClassifyPath is the one rule that decides what a path given to
// validate, plan or run is; isDir says whether it is a directory. treeDir
// is the tree (--dir): the daemon reads it, and only it, as the tree
// whose subdirectories are tenants.
//
//   - the tree itself is a tree (plan and run read no other path);
//   - inside the tree, position decides: a first-level directory is a
//     tenant, a deeper directory or file is part of its tenant, a file at
//     the top is misplaced;
//   - outside the tree, a file is a file of the tenant named by its
//     directory (CheckPaths checks the files of one directory together),
//     and a directory is a tenant when it holds definition files itself
//     and none of its subdirectories holds any (a copy of one tenant's
//     directory), otherwise a tree: a directory with tenant-like subdirectories is a
//     tree even with a stray file at its top, which is then reported as
//     misplaced, as the daemon would report it.
func ClassifyPath(treeDir, arg string, isDir bool) PathRole {
	abs, err := RealPath(arg)
	if err != nil {
		abs, _ = filepath.Abs(arg)
	}
	treeAbs, err := RealPath(treeDir)
	if err != nil {
		treeAbs, _ = filepath.Abs(treeDir) // a --dir that does not exist matters only as a prefix
	}
	tree := "--dir " + filepath.Clean(treeDir)
	rel, relErr := filepath.Rel(treeAbs, abs)
	inside := relErr == nil && rel != ".." && !strings.HasPrefix(rel, "../")
	switch {
	case inside && rel == ".":
		r := PathRole{Role: RoleTree, Why: "it is " + tree, inTree: true, treeAbs: treeAbs, rel: "."}
		if HoldsDefinitions(arg) && !subdirsHoldDefinitions(arg) {
			r.Hint = "it holds definition files at its top and none in subdirectories: if it is one tenant's directory, its parent is the tree (--dir " +
				filepath.Dir(filepath.Clean(arg)) + ")"
		}
		return r
	case inside:
		rel = filepath.ToSlash(rel)
		tenant, _, nested := strings.Cut(rel, "/")
		r := PathRole{Tenant: tenant, inTree: true, treeAbs: treeAbs, rel: rel}
		switch {
		case !isDir && !nested:
			r.Role, r.Tenant, r.Why = RoleTopFile, tenant, "a file at the top of "+tree
		case !isDir && Ignored(filepath.Base(abs)):
			r.Role, r.Why = RoleIgnored, "its name is one tasksync skips"
		case !nested:
			r.Role, r.Why = RoleTenant, "a directory at the top of "+tree
		default:
			r.Role, r.Why = RoleTenantPart, "inside tenant "+tenant+"'s directory in "+tree
		}
		return r
	case !isDir:
		return PathRole{Role: RoleFile, Tenant: filepath.Base(filepath.Dir(abs)), Why: "a file outside " + tree + "; its directory names its tenant"}
	case HoldsDefinitions(arg) && !subdirsHoldDefinitions(arg):
		return PathRole{Role: RoleTenant, Tenant: filepath.Base(abs),
			Why: "a directory outside " + tree + " with definition files of its own and none in subdirectories"}
	}
	r := PathRole{Role: RoleTree, Why: "a directory outside " + tree + " with definition files in subdirectories"}
	if HoldsDefinitions(arg) {
		r.Why += "; the definition files at its top are misplaced"
		r.Hint = "if it is one tenant's directory, check it inside its tree: --dir " + filepath.Dir(filepath.Clean(arg))
	}
	return r
}

// subdirsHoldDefinitions reports whether a directory below dir (not
// skipped by name) holds a definition file, looking at no more than
// maxProbeEntries entries. Symlinks are not followed.
func subdirsHoldDefinitions(dir string) bool {
	found, seen := false, 0
	stop := errors.New("stop")
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: the load reports it
		}
		if seen++; seen > maxProbeEntries {
			return stop
		}
		if p == dir {
			return nil
		}
		if Ignored(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && filepath.Dir(p) != filepath.Clean(dir) && isDefinitionFile(d.Name()) {
			found = true
			return stop
		}
		return nil
	})
	return found
}

// String is what a command says of a path it was given, after the path:
// `is tenant "acme" (a directory at the top of --dir tasks.d)`,
// escaped for a terminal.
func (r PathRole) String() string {
	tenant := strconvQuote(r.Tenant)
	var what string
	switch r.Role {
	case RoleTree:
		what = "is a tree"
	case RoleTenant:
		what = "is tenant " + tenant
	case RoleTenantPart:
		what = "is part of tenant " + tenant
	case RoleFile:
		what = "is a file of tenant " + tenant
	case RoleTopFile:
		what = "is a file at the top of the tree"
	default:
		what = "is ignored"
	}
	s := what + " (" + reconciler.EscapeText(r.Why) + ")"
	if r.Hint != "" {
		s += "; " + reconciler.EscapeText(r.Hint)
	}
	return s
}

// strconvQuote quotes a tenant name, escaped for a terminal.
func strconvQuote(s string) string { return `"` + reconciler.EscapeText(s) + `"` }
