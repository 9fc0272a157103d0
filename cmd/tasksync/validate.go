package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/executor"
)

// The output formats of validate (and later plan).
const (
	formatText = "text"
	formatJSON = "json"
)

type validateOptions struct {
	format     string
	dir        string
	secretsDir string
}

func validateFlags(f *flagSet) {
	o := &validateOptions{}
	f.string(&o.format, "format", "TASKSYNC_FORMAT", formatText, "output `format`: text or json")
	f.string(&o.dir, "dir", "TASKSYNC_DIR", "./tasks.d", "the definitions `tree`; checked when no PATH is given, and the tree that a PATH inside it belongs to")
	secretsDirFlag(f, &o.secretsDir)
	f.opts = o
}

// validateGCPercent and validateMemoryLimit are the GOGC and GOMEMLIMIT
// validate runs with unless they are set (see docs/benchmarks.md).
const (
	validateGCPercent   = 800
	validateMemoryLimit = 192 << 20
)

// validateStats counts what was checked.
type validateStats struct {
	tenants, files, definitions int
}

func runValidate(ctx context.Context, c *invocation) error {
	o := c.flags.opts.(*validateOptions)
	if o.format != formatText && o.format != formatJSON {
		return usageError("validate: --format must be text or json, got %q", o.format)
	}
	paths := c.args
	if len(paths) == 0 {
		paths = []string{o.dir}
	}
	if c.getenv("GOGC") == "" {
		// validate is a short batch job whose live heap stays small (one
		// tenant per worker): trading tens of MiB for less collection
		// time is the right default here, under a soft memory limit.
		defer debug.SetGCPercent(debug.SetGCPercent(validateGCPercent))
		if c.getenv("GOMEMLIMIT") == "" {
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(validateMemoryLimit))
		}
	}
	v, err := definitions.NewValidator()
	if err != nil {
		return err
	}
	var stats validateStats
	if err := executor.NewSecrets(o.secretsDir, c.getenv).CheckDir(); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	grants := grantCheck(o.secretsDir, c.getenv, false)
	problems, err := interruptible(ctx, func() ([]reconciler.Problem, error) {
		problems := []reconciler.Problem{}
		for _, p := range paths {
			ps, err := validatePath(ctx, v, o.dir, p, grants, &stats)
			if err != nil {
				return nil, &exitError{code: exitUsage, err: err}
			}
			problems = append(problems, ps...)
		}
		return problems, nil
	})
	if err != nil {
		return err
	}
	for i := range problems {
		problems[i] = problems[i].Escaped() // the loader's are already; validate's own too
	}
	reconciler.SortProblems(problems)
	problems = slices.Compact(problems) // a PATH given twice, or inside another

	if o.format == formatJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(problems); err != nil {
			return err
		}
	} else {
		for _, p := range problems {
			fmt.Fprintln(c.stdout, p.String())
		}
		fmt.Fprintln(c.stdout, summary(problems, stats))
	}
	if len(problems) > 0 {
		return &exitError{code: exitFailure}
	}
	return nil
}

// interruptible runs load and returns its result, or ctx's error as soon
// as ctx is done (a signal): a read stuck in the kernel (a hung network
// file system) cannot be cancelled, and validate is a command that exits
// on return, so the stuck goroutine is left behind rather than waited for.
func interruptible[T any](ctx context.Context, load func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := load()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("validate: interrupted: %w", ctx.Err())
	}
}

func summary(problems []reconciler.Problem, s validateStats) string {
	checked := fmt.Sprintf("%s, %s, %s", plural(s.tenants, "tenant"), plural(s.files, "file"), plural(s.definitions, "valid definition"))
	if len(problems) == 0 {
		return "ok: " + checked
	}
	return fmt.Sprintf("%s (%s)", plural(len(problems), "problem"), checked)
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// validatePath checks one PATH argument: a tree, a tenant directory or a
// file, with the secret grant check grants (nil: none). Problem paths
// start with the argument as given.
//
// A PATH inside the tree dir is checked as part of its tenant, so that
// codes are compared with the tenant's other files and script paths
// resolve from the tenant directory; only its own problems are reported.
// A PATH elsewhere is a tree, a tenant directory when it holds definition
// files itself, or a file of the tenant named by its directory.
func validatePath(ctx context.Context, v *definitions.Validator, treeDir, arg string, grants func(tenant, name string) error, stats *validateStats) ([]reconciler.Problem, error) {
	info, err := os.Stat(arg)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("validate: %s: %w", arg, err)
	}
	abs, err := realAbs(arg)
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	var problems []reconciler.Problem
	// load reads the tree at root on disk (named shown) and keeps what is
	// under the tree path only ("" for all).
	load := func(root, shown, only string, fn func(*definitions.Loader) (*reconciler.TenantTree, error)) error {
		prefix := prefixOf(shown)
		l := v.NewLoader(definitions.DirFS(root), definitions.Options{AbsRoot: filepath.ToSlash(root), PathPrefix: prefix, Secrets: grants})
		in := func(p string) bool { return only == "" || p == only || strings.HasPrefix(p, only+"/") }
		// The loader's problems carry escaped paths.
		escPrefix, escOnly := reconciler.EscapeText(prefix), reconciler.EscapeText(only)
		inEscaped := func(p string) bool { return escOnly == "" || p == escOnly || strings.HasPrefix(p, escOnly+"/") }
		collect := func(r *reconciler.TenantTree) {
			stats.tenants++
			for _, f := range r.Files {
				if in(f.Path) {
					stats.files++
				}
			}
			for _, d := range r.Definitions {
				if in(d.Source.Path) {
					stats.definitions++
				}
			}
			for _, p := range r.Problems {
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
	single := func(tenant string, files []string) func(*definitions.Loader) (*reconciler.TenantTree, error) {
		return func(l *definitions.Loader) (*reconciler.TenantTree, error) {
			if files != nil {
				return l.LoadFiles(tenant, files), nil
			}
			return l.LoadTenant(tenant), nil
		}
	}
	nameProblem := func(tenant string) []reconciler.Problem {
		if msg := tenantNameProblem(tenant); msg != "" {
			return []reconciler.Problem{{Path: filepath.ToSlash(filepath.Clean(arg)), Message: msg}}
		}
		return nil
	}

	treeAbs, rerr := realAbs(treeDir)
	if rerr != nil {
		treeAbs, _ = filepath.Abs(treeDir) // a --dir that does not exist matters only as a prefix
	}
	switch rel, relErr := filepath.Rel(treeAbs, abs); {
	case relErr == nil && rel == ".":
		err = load(abs, arg, "", nil)
	case relErr == nil && !strings.HasPrefix(rel, ".."):
		// Inside the tree: the whole tenant is read, its part reported.
		rel = filepath.ToSlash(rel)
		tenant, _, nested := strings.Cut(rel, "/")
		switch {
		case !info.IsDir() && !nested:
			return []reconciler.Problem{{Path: filepath.ToSlash(filepath.Clean(arg)), Message: "definition files belong in a tenant directory (<tenant>/" + tenant + "), not at the top of the tree"}}, nil
		case !info.IsDir() && definitions.Ignored(filepath.Base(abs)):
			return []reconciler.Problem{{Path: filepath.ToSlash(filepath.Clean(arg)), Message: "this name is ignored (it starts with '.' or '_', or is an editor or rsync temporary): tasksync never reads it as a definition"}}, nil
		}
		if ps := nameProblem(tenant); ps != nil {
			return ps, nil
		}
		err = load(treeAbs, treeDir, rel, single(tenant, nil))
	case !info.IsDir():
		tenantDir := filepath.Dir(abs)
		tenant := filepath.Base(tenantDir)
		if ps := nameProblem(tenant); ps != nil {
			return ps, nil
		}
		file := tenant + "/" + filepath.Base(abs)
		err = load(filepath.Dir(tenantDir), filepath.Dir(filepath.Dir(arg)), file, single(tenant, []string{file}))
	case holdsDefinitions(arg):
		tenant := filepath.Base(abs)
		if ps := nameProblem(tenant); ps != nil {
			return ps, nil
		}
		err = load(filepath.Dir(abs), filepath.Dir(arg), tenant, single(tenant, nil))
	default:
		err = load(abs, arg, "", nil)
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

// realAbs is the absolute path of p with symlinks resolved, so that
// absolute links inside the tree are judged against the real root.
func realAbs(p string) (string, error) {
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

func tenantNameProblem(name string) string {
	if definitions.TenantPattern.MatchString(name) {
		return ""
	}
	return fmt.Sprintf("directory %q is not a valid tenant code; use lowercase letters, digits and '-' (at most 63, not starting or ending with '-')", name)
}

// holdsDefinitions reports whether dir has definition files of its own,
// which makes it a tenant directory rather than a tree.
func holdsDefinitions(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() && !strings.HasPrefix(n, ".") && !strings.HasPrefix(n, "_") && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			return true
		}
	}
	return false
}
