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
}

func validateFlags(f *flagSet) {
	o := &validateOptions{}
	f.string(&o.format, "format", "TASKSYNC_FORMAT", formatText, "output `format`: text or json")
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
		dir := c.getenv("TASKSYNC_DIR")
		if dir == "" {
			dir = "./tasks.d"
		}
		paths = []string{dir}
	}
	v, err := definitions.NewValidator()
	if err != nil {
		return err
	}
	problems := []reconciler.Problem{}
	var stats validateStats
	for _, p := range paths {
		ps, err := validatePath(ctx, v, p, &stats)
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
func validatePath(ctx context.Context, v *definitions.Validator, arg string, stats *validateStats) ([]reconciler.Problem, error) {
	info, err := os.Stat(arg)
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	abs, err := filepath.Abs(arg)
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	var problems []reconciler.Problem
	collect := func(r *definitions.TenantResult, display func(string) string) {
		stats.tenants++
		stats.files += len(r.Files)
		stats.definitions += len(r.Definitions)
		for _, p := range r.Problems {
			p.Path = display(p.Path)
			problems = append(problems, p)
		}
	}

	if !info.IsDir() {
		// A file: part of the tenant named by its directory.
		parent := filepath.Dir(abs)
		tenant := filepath.Base(parent)
		l := v.NewLoader(os.DirFS(filepath.Dir(parent)), definitions.Options{AbsRoot: filepath.ToSlash(filepath.Dir(parent))})
		display := func(string) string { return arg }
		if msg := tenantNameProblem(tenant); msg != "" {
			return []reconciler.Problem{{Path: arg, Message: msg}}, nil
		}
		collect(l.LoadFiles(tenant, []string{tenant + "/" + filepath.Base(abs)}), display)
		return problems, nil
	}

	if holdsDefinitions(arg) {
		// A tenant directory.
		tenant := filepath.Base(abs)
		if msg := tenantNameProblem(tenant); msg != "" {
			return []reconciler.Problem{{Path: arg, Message: msg}}, nil
		}
		l := v.NewLoader(os.DirFS(filepath.Dir(abs)), definitions.Options{AbsRoot: filepath.ToSlash(filepath.Dir(abs))})
		display := func(p string) string {
			rest, _ := strings.CutPrefix(p, tenant)
			return filepath.ToSlash(filepath.Clean(arg)) + rest
		}
		collect(l.LoadTenant(tenant), display)
		return problems, nil
	}

	l := v.NewLoader(os.DirFS(abs), definitions.Options{AbsRoot: filepath.ToSlash(abs)})
	display := func(p string) string { return filepath.ToSlash(filepath.Join(arg, p)) }
	top, err := l.LoadAll(ctx, func(r *definitions.TenantResult) { collect(r, display) })
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("validate: cannot read %s: %v", arg, pe.Err)
		}
		return nil, fmt.Errorf("validate: %s: %w", arg, err)
	}
	for _, p := range top {
		p.Path = display(p.Path)
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
