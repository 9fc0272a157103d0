package definitions

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/riveredge/tasksync/reconciler"
)

// PathStats counts what CheckPath read: each tenant, file and definition
// once, however many of the paths given name it.
type PathStats struct {
	Tenants, Files, Definitions int

	seen map[string]bool // what was counted, by kind and real path
}

// count counts what key names (kind, then a real path), once.
func (s *PathStats) count(n *int, key string) {
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	if !s.seen[key] {
		s.seen[key] = true
		*n++
	}
}

// CheckPath checks one path on disk as tasksync validate does: a tree, a
// tenant directory or a file, with base's secret grant check (nil: none)
// and definitions limit (its other fields are set per path), counting
// what it read in stats. The problems include the
// warnings (Problem.IsWarning). Problem paths start with the path as
// given.
//
// What the path is, ClassifyPath decides, and announce, if set, is told
// before it is read. A path inside the tree treeDir is checked as part of
// its tenant, so that codes are compared with the tenant's other files
// and script paths resolve from the tenant directory; only its own
// problems are reported.
func (v *Validator) CheckPath(ctx context.Context, treeDir, arg string, base Options, stats *PathStats, announce func(arg string, role PathRole)) ([]reconciler.Problem, error) {
	return v.checkPath(ctx, treeDir, arg, nil, base, stats, announce)
}

// checkPath is CheckPath; more, when arg is a file outside the tree, are
// other files of its tenant directory (as CheckPaths groups them), checked
// and reported with it, so that codes are compared across them.
func (v *Validator) checkPath(ctx context.Context, treeDir, arg string, more []string, base Options, stats *PathStats, announce func(arg string, role PathRole)) ([]reconciler.Problem, error) {
	info, err := os.Stat(arg)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("validate: %s: %w", arg, err)
	}
	abs, err := RealPath(arg)
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	if announce != nil {
		announce(arg, ClassifyPath(treeDir, arg, info.IsDir()))
	}
	var problems []reconciler.Problem
	// load reads the tree at root on disk (named shown) and keeps what is
	// under the tree paths only (all when only is empty).
	load := func(root, shown string, only []string, fn func(*Loader) (*reconciler.TenantTree, error)) error {
		prefix := prefixOf(shown)
		l := v.NewLoader(DirFS(root), Options{AbsRoot: filepath.ToSlash(root), PathPrefix: prefix, Secrets: base.Secrets, MaxDefinitions: base.MaxDefinitions})
		under := func(p string, only []string) bool {
			for _, o := range only {
				if p == o || strings.HasPrefix(p, o+"/") {
					return true
				}
			}
			return len(only) == 0
		}
		in := func(p string) bool { return under(p, only) }
		// The loader's problems carry escaped paths.
		escPrefix, escOnly := reconciler.EscapeText(prefix), make([]string, len(only))
		for i, o := range only {
			escOnly[i] = reconciler.EscapeText(o)
		}
		inEscaped := func(p string) bool { return under(p, escOnly) }
		// Counted by real path: a tenant, file or definition that two of
		// the paths given reach is counted once.
		real := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
		collect := func(r *reconciler.TenantTree) {
			stats.count(&stats.Tenants, "tenant\x00"+real(r.Tenant))
			for _, f := range r.Files {
				if in(f.Path) {
					stats.count(&stats.Files, "file\x00"+real(f.Path))
				}
			}
			for _, d := range r.Definitions {
				if in(d.Source.Path) {
					stats.count(&stats.Definitions, fmt.Sprintf("definition\x00%s\x00%d", real(d.Source.Path), d.Source.Line))
				}
			}
			for _, p := range slices.Concat(r.Problems, r.Warnings) {
				if inEscaped(strings.TrimPrefix(p.Path, escPrefix)) {
					problems = append(problems, p)
				}
			}
		}
		if fn != nil {
			r, err := fn(l)
			if err == nil {
				collect(r)
			}
			return err
		}
		top, err := l.LoadAll(ctx, collect)
		problems = append(problems, top...)
		return err
	}
	single := func(tenant string, files []string) func(*Loader) (*reconciler.TenantTree, error) {
		return func(l *Loader) (*reconciler.TenantTree, error) {
			if files != nil {
				return l.LoadFiles(tenant, files), nil
			}
			return l.LoadTenant(tenant), nil
		}
	}
	nameProblem := func(tenant string) []reconciler.Problem {
		if msg := TenantCodeProblem(tenant); msg != "" {
			return []reconciler.Problem{{Path: filepath.ToSlash(filepath.Clean(arg)), Message: msg}}
		}
		return nil
	}

	role := ClassifyPath(treeDir, arg, info.IsDir())
	switch role.Role {
	case RoleTree:
		err = load(abs, arg, nil, nil)
	case RoleTopFile:
		return []reconciler.Problem{{Path: filepath.ToSlash(filepath.Clean(arg)), Message: misplacedFileProblem(role.Tenant)}}, nil
	case RoleIgnored:
		return []reconciler.Problem{{Path: filepath.ToSlash(filepath.Clean(arg)), Message: "this name is ignored (it starts with '.' or '_', or is an editor or rsync temporary): tasksync never reads it as a definition"}}, nil
	case RoleTenant, RoleTenantPart:
		if ps := nameProblem(role.Tenant); ps != nil {
			return ps, nil
		}
		if role.inTree {
			// Inside the tree: the whole tenant is read, its part reported.
			err = load(role.treeAbs, treeDir, []string{role.rel}, single(role.Tenant, nil))
		} else {
			err = load(filepath.Dir(abs), filepath.Dir(arg), []string{role.Tenant}, single(role.Tenant, nil))
		}
	case RoleFile:
		if ps := nameProblem(role.Tenant); ps != nil {
			return ps, nil
		}
		tenantDir := filepath.Dir(abs)
		files := []string{role.Tenant + "/" + filepath.Base(abs)}
		for _, m := range more {
			mabs, err := RealPath(m)
			if err != nil {
				return nil, fmt.Errorf("validate: %w", err)
			}
			if f := role.Tenant + "/" + filepath.Base(mabs); !slices.Contains(files, f) {
				files = append(files, f)
				if announce != nil {
					announce(m, role)
				}
			}
		}
		err = load(filepath.Dir(tenantDir), filepath.Dir(filepath.Dir(arg)), files, single(role.Tenant, files))
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("validate: cannot read %s: %v", arg, pe.Err)
		}
		return nil, fmt.Errorf("validate: %s: %w", arg, err)
	}
	return problems, nil
}

// CheckPaths checks each of paths as CheckPath does and returns all their
// problems, escaped for a terminal, each an error unless it is a warning,
// sorted by path and line, each once (a path given twice, or inside
// another, reports its problems once). A path
// that cannot be read stops the check with an error.
func (v *Validator) CheckPaths(ctx context.Context, treeDir string, paths []string, base Options, stats *PathStats, announce func(arg string, role PathRole)) ([]reconciler.Problem, error) {
	problems := []reconciler.Problem{}
	// Files outside the tree are grouped by their tenant's directory and
	// checked together where the first of them is given, so that a code
	// defined in two of them is found as the daemon would find it.
	byDir := map[string][]string{} // a real tenant directory: its files given, after the first
	first := map[string]bool{}     // the paths that check a group
	for _, p := range paths {
		dir, ok := outsideFileDir(treeDir, p)
		if !ok {
			first[p] = true
			continue
		}
		if _, seen := byDir[dir]; !seen {
			byDir[dir] = []string{}
			first[p] = true
			continue
		}
		byDir[dir] = append(byDir[dir], p)
	}
	for _, p := range paths {
		if !first[p] {
			continue
		}
		first[p] = false // a path given twice is checked once
		var more []string
		if dir, ok := outsideFileDir(treeDir, p); ok {
			more = byDir[dir]
		}
		ps, err := v.checkPath(ctx, treeDir, p, more, base, stats, announce)
		if err != nil {
			return nil, err
		}
		problems = append(problems, ps...)
	}
	for i := range problems {
		problems[i] = problems[i].Escaped() // the loader's are already; CheckPath's own too
		if !problems[i].IsWarning() {
			problems[i].Severity = reconciler.SeverityError
		}
	}
	reconciler.SortProblems(problems)
	return slices.Compact(problems), nil
}

// outsideFileDir is the real tenant directory of p when p is a readable
// file outside the tree treeDir (RoleFile).
func outsideFileDir(treeDir, p string) (string, bool) {
	info, err := os.Stat(p)
	if err != nil || info.IsDir() || ClassifyPath(treeDir, p, false).Role != RoleFile {
		return "", false
	}
	abs, err := RealPath(p)
	if err != nil {
		return "", false
	}
	return filepath.Dir(abs), true
}

// Summary is the line tasksync validate ends with: what was checked, and
// the errors and warnings found, counted apart; under strict a warning
// fails the check as an error does.
func (s PathStats) Summary(errs, warnings int, strict bool) string {
	checked := fmt.Sprintf("%s, %s, %s", reconciler.Plural(s.Tenants, "tenant"), reconciler.Plural(s.Files, "file"),
		reconciler.Plural(s.Definitions, "valid definition"))
	var found []string
	if errs > 0 {
		found = append(found, reconciler.Plural(errs, "problem"))
	}
	if warnings > 0 {
		found = append(found, reconciler.Plural(warnings, "warning"))
	}
	switch {
	case errs == 0 && warnings == 0:
		return "ok: " + checked
	case errs == 0 && !strict:
		return fmt.Sprintf("ok: %s; %s", checked, found[0])
	case errs == 0:
		return fmt.Sprintf("failed under --strict: %s (%s)", found[0], checked)
	}
	return fmt.Sprintf("%s (%s)", strings.Join(found, ", "), checked)
}

// RealPath is the absolute path of p with symlinks resolved, so that
// absolute links inside the tree are judged against the real root.
func RealPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// prefixOf is the path prefix problems get for a tree named dir.
func prefixOf(dir string) string {
	dir = filepath.ToSlash(filepath.Clean(dir))
	if dir == "." {
		return ""
	}
	return dir + "/"
}
