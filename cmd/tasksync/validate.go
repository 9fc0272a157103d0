package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
)

// The output formats of validate (and later plan).
const (
	formatText = "text"
	formatJSON = "json"
)

type validateOptions struct {
	format string
	dir    string
}

func validateFlags(f *flagSet) {
	o := &validateOptions{}
	f.string(&o.format, "format", "TASKSYNC_FORMAT", formatText, "output `format`: text or json")
	f.string(&o.dir, "dir", "TASKSYNC_DIR", "./tasks.d", "the definitions `tree`; checked when no PATH is given, and the tree that a PATH inside it belongs to")
	f.opts = o
}

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
	v, err := definitions.NewValidator()
	if err != nil {
		return err
	}
	problems := []reconciler.Problem{}
	var stats validateStats
	for _, p := range paths {
		ps, err := validatePath(ctx, v, o.dir, p, &stats)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		problems = append(problems, ps...)
	}
	reconciler.SortProblems(problems)

	if o.format == formatJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
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

func summary(problems []reconciler.Problem, s validateStats) string {
	checked := fmt.Sprintf("%s, %s, %s", plural(s.tenants, "tenant"), plural(s.files, "file"), plural(s.definitions, "valid definition"))
	if len(problems) == 0 {
		return "ok: " + checked
	}
	files := map[string]bool{}
	for _, p := range problems {
		files[p.Path] = true
	}
	return fmt.Sprintf("%s in %s (%s)", plural(len(problems), "problem"), plural(len(files), "file"), checked)
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// validatePath checks one PATH argument: a tree, a tenant directory or a
// file. Problem paths are rewritten to start with the argument as given.
//
// A PATH inside the tree dir is checked as part of its tenant, so that
// codes are compared with the tenant's other files and script paths
// resolve from the tenant directory; only its own problems are reported.
// A PATH elsewhere is a tree, a tenant directory when it holds definition
// files itself, or a file of the tenant named by its directory.
func validatePath(ctx context.Context, v *definitions.Validator, treeDir, arg string, stats *validateStats) ([]reconciler.Problem, error) {
	info, err := os.Stat(arg)
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	abs, err := filepath.Abs(arg)
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	slashArg := filepath.ToSlash(filepath.Clean(arg))
	var problems []reconciler.Problem
	// collect adds r's problems, files and definitions under the tree path
	// prefix ("" for all), with paths shown as the user wrote them.
	collect := func(r *definitions.TenantResult, prefix, shownAs string) {
		in := func(p string) bool { return prefix == "" || p == prefix || strings.HasPrefix(p, prefix+"/") }
		show := func(p string) string { return shownAs + strings.TrimPrefix(p, prefix) }
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
			if in(p.Path) {
				p.Path = show(p.Path)
				problems = append(problems, p)
			}
		}
	}

	if treeAbs, err := filepath.Abs(treeDir); err == nil {
		if rel, err := filepath.Rel(treeAbs, abs); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			rel = filepath.ToSlash(rel)
			tenant, _, _ := strings.Cut(rel, "/")
			if msg := tenantNameProblem(tenant); msg != "" {
				return []reconciler.Problem{{Path: slashArg, Message: msg}}, nil
			}
			l := v.NewLoader(os.DirFS(treeAbs), definitions.Options{AbsRoot: filepath.ToSlash(treeAbs)})
			collect(l.LoadTenant(tenant), rel, slashArg)
			return problems, nil
		}
	}

	if !info.IsDir() {
		parent := filepath.Dir(abs)
		tenant := filepath.Base(parent)
		if msg := tenantNameProblem(tenant); msg != "" {
			return []reconciler.Problem{{Path: slashArg, Message: msg}}, nil
		}
		root := filepath.Dir(parent)
		l := v.NewLoader(os.DirFS(root), definitions.Options{AbsRoot: filepath.ToSlash(root)})
		file := tenant + "/" + filepath.Base(abs)
		collect(l.LoadFiles(tenant, []string{file}), file, slashArg)
		return problems, nil
	}

	if holdsDefinitions(arg) {
		tenant := filepath.Base(abs)
		if msg := tenantNameProblem(tenant); msg != "" {
			return []reconciler.Problem{{Path: slashArg, Message: msg}}, nil
		}
		root := filepath.Dir(abs)
		l := v.NewLoader(os.DirFS(root), definitions.Options{AbsRoot: filepath.ToSlash(root)})
		collect(l.LoadTenant(tenant), tenant, slashArg)
		return problems, nil
	}

	l := v.NewLoader(os.DirFS(abs), definitions.Options{AbsRoot: filepath.ToSlash(abs)})
	top, err := l.LoadAll(ctx, func(r *definitions.TenantResult) { collect(r, "", slashArg+"/") })
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("validate: cannot read %s: %v", arg, pe.Err)
		}
		return nil, fmt.Errorf("validate: %s: %w", arg, err)
	}
	for _, p := range top {
		p.Path = slashArg + "/" + p.Path
		problems = append(problems, p)
	}
	return problems, nil
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
