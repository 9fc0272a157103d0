package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/riveredge/tasksync/internal/cli"
	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/store"
)

// dbOptions are the flags of the commands that reach Postgres.
type dbOptions struct {
	databaseURL string
}

func (o *dbOptions) flags(f *cli.FlagSet) {
	f.String(&o.databaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL `url` of the applied state, e.g. postgres://user@host/db")
}

func (o *dbOptions) open(ctx context.Context, opts store.Options) (*store.Store, error) {
	if o.databaseURL == "" {
		return nil, cli.UsageError("--database-url (or $DATABASE_URL) is required")
	}
	return store.Open(ctx, o.databaseURL, opts)
}

// treeOptions are the flags of the commands that reconcile a tree.
type treeOptions struct {
	dbOptions
	dir            string
	maxRetire      string
	maxDefinitions int
	secretsDir     string
	budget         reconciler.RetireBudget
	// grants is the loader's secret grant check (executor.Secrets.Grants).
	grants func(tenant, name string) error
}

func (o *treeOptions) flags(f *cli.FlagSet) {
	o.dbOptions.flags(f)
	f.String(&o.dir, "dir", "TASKSYNC_DIR", "./tasks.d", "the definitions `tree`")
	secretsDirFlag(f, &o.secretsDir)
	f.String(&o.maxRetire, "max-retire", "TASKSYNC_MAX_RETIRE", "half",
		"prune `budget` per tenant and reconcile: half (hold retirements of more than half, or all, of a tenant's definitions), all, or a number")
	maxDefinitionsFlag(f, &o.maxDefinitions)
}

// maxDefinitionsFlag declares --max-definitions into p.
func maxDefinitionsFlag(f *cli.FlagSet, p *int) {
	f.Int(p, "max-definitions", "TASKSYNC_MAX_DEFINITIONS", definitions.DefaultMaxDefinitions,
		"the most definitions a tenant may have (0: no limit); a tenant over it applies none of its changes and keeps what is applied")
}

// maxDefinitions is the loader's definitions.Options.MaxDefinitions for
// the flag's value n (0: no limit).
func maxDefinitions(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

func (o *treeOptions) check() error {
	b, err := reconciler.ParseRetireBudget(o.maxRetire)
	if err != nil {
		return cli.UsageError("%v", err)
	}
	o.budget = b
	info, err := os.Stat(o.dir)
	if err != nil {
		return &cli.ExitError{Code: cli.ExitFailure, Err: fmt.Errorf("definitions tree: %w", err)}
	}
	if !info.IsDir() {
		return &cli.ExitError{Code: cli.ExitFailure, Err: fmt.Errorf("definitions tree %s is not a directory", o.dir)}
	}
	return nil
}

// tree is the loader of the tree in o.dir; reuse is its
// definitions.Options.Reuse (0 for a command that loads the tree once).
func (o *treeOptions) tree(reuse time.Duration) (*definitions.Loader, error) {
	return definitions.NewDirLoader(o.dir, definitions.Options{Secrets: o.grants, Reuse: reuse, MaxDefinitions: maxDefinitions(o.maxDefinitions)})
}

// describeTree is the line plan and run say of the tree: what it is to
// them (definitions.ClassifyPath: always the tree) and the git commit it
// is at.
func (o *treeOptions) describeTree(tree *definitions.Loader) string {
	return fmt.Sprintf("%s %s; git commit: %s", reconciler.EscapeText(o.dir), definitions.ClassifyPath(o.dir, o.dir, true), tree.Revision())
}

// reconcileWorkers bounds how many tenants a reconcile reads and applies
// at once.
func reconcileWorkers() int { return 2 * runtime.GOMAXPROCS(0) }

// secretsDirFlag registers --secrets-dir.
func secretsDirFlag(f *cli.FlagSet, dir *string) {
	f.String(dir, "secrets-dir", "TASKSYNC_SECRETS_DIR", "",
		"`directory` of the secrets granted to tenants: <dir>/<tenant>/NAME, or <dir>/_shared/NAME for the tenants <dir>/_shared/NAME.tenants lists")
}

// newLogger returns the logger of --log-format.
func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, cli.UsageError("--log-format must be text or json, got %q", format)
}

// errExit1 ends a command with status 1 after it printed its own report.
var errExit1 = cli.Exit(cli.ExitFailure)
