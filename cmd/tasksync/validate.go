package main

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/riveredge/tasksync/internal/cli"
	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/executor"
)

// The output formats of validate and plan.
const (
	formatText   = "text"
	formatJSON   = "json"
	formatGitHub = "github"
)

// validateFormats are the formats validate writes.
var validateFormats = []string{formatText, formatJSON, formatGitHub}

type validateOptions struct {
	format         string
	dir            string
	secretsDir     string
	strict         bool
	maxDefinitions int
}

func validateFlags(f *cli.FlagSet) {
	o := &validateOptions{}
	f.String(&o.format, "format", "TASKSYNC_FORMAT", formatText, "output `format`: text, json, or github (GitHub Actions annotations)")
	f.String(&o.dir, "dir", "TASKSYNC_DIR", "./tasks.d", "the definitions `tree`; checked when no PATH is given, and the tree that a PATH inside it belongs to")
	secretsDirFlag(f, &o.secretsDir)
	maxDefinitionsFlag(f, &o.maxDefinitions)
	f.Bool(&o.strict, "strict", "TASKSYNC_STRICT", "fail (exit 1) on warnings too, such as a one-shot whose time has passed")
	f.Opts = o
}

// validateGCPercent and validateMemoryLimit are the GOGC and GOMEMLIMIT
// validate runs with unless they are set (see docs/benchmarks.md).
const (
	validateGCPercent   = 800
	validateMemoryLimit = 192 << 20
)

func runValidate(ctx context.Context, c *cli.Invocation) error {
	o := c.Flags.Opts.(*validateOptions)
	if !slices.Contains(validateFormats, o.format) {
		return cli.UsageError("validate: --format must be text, json or github, got %q", o.format)
	}
	paths := c.Args
	if len(paths) == 0 {
		paths = []string{o.dir}
	}
	if c.Getenv("GOGC") == "" {
		// validate is a short batch job whose live heap stays small (one
		// tenant per worker): trading tens of MiB for less collection
		// time is the right default here, under a soft memory limit.
		defer debug.SetGCPercent(debug.SetGCPercent(validateGCPercent))
		if c.Getenv("GOMEMLIMIT") == "" {
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(validateMemoryLimit))
		}
	}
	v, err := definitions.NewValidator()
	if err != nil {
		return err
	}
	var stats definitions.PathStats
	secrets := executor.NewSecrets(o.secretsDir, c.Getenv)
	if err := secrets.CheckDir(); err != nil {
		return &cli.ExitError{Code: cli.ExitUsage, Err: err}
	}
	grants := secrets.Grants(false)
	problems, err := cli.Interruptible(ctx, "validate", func() ([]reconciler.Problem, error) {
		ps, err := v.CheckPaths(ctx, o.dir, paths, definitions.Options{Secrets: grants, MaxDefinitions: maxDefinitions(o.maxDefinitions)}, &stats, func(arg string, role definitions.PathRole) {
			fmt.Fprintf(c.Stderr, "validate: %s %s\n", reconciler.EscapeText(arg), role)
		})
		if err != nil {
			return nil, &cli.ExitError{Code: cli.ExitUsage, Err: err}
		}
		return ps, nil
	})
	if err != nil {
		return err
	}
	errs := slices.DeleteFunc(slices.Clone(problems), reconciler.Problem.IsWarning)
	warnings := len(problems) - len(errs)

	switch o.format {
	case formatJSON:
		if err := reconciler.WriteProblemsJSON(c.Stdout, problems); err != nil {
			return err
		}
	case formatGitHub:
		for _, p := range problems {
			fmt.Fprintln(c.Stdout, p.GitHubAnnotation(o.strict))
		}
		fmt.Fprintln(c.Stdout, stats.Summary(len(errs), warnings, o.strict))
	default:
		for _, p := range problems {
			fmt.Fprintln(c.Stdout, p.String())
		}
		fmt.Fprintln(c.Stdout, stats.Summary(len(errs), warnings, o.strict))
	}
	if len(errs) > 0 || o.strict && warnings > 0 {
		return &cli.ExitError{Code: cli.ExitFailure}
	}
	return nil
}
