package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions"
	"github.com/riveredge/tasksync/reconciler/store"
)

// dbOptions are the flags of the commands that reach Postgres.
type dbOptions struct {
	databaseURL string
}

func (o *dbOptions) flags(f *flagSet) {
	f.string(&o.databaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL `url` of the applied state, e.g. postgres://user@host/db")
}

func (o *dbOptions) open(ctx context.Context, opts store.Options) (*store.Store, error) {
	if o.databaseURL == "" {
		return nil, usageError("--database-url (or $DATABASE_URL) is required")
	}
	return store.Open(ctx, o.databaseURL, opts)
}

// treeOptions are the flags of the commands that reconcile a tree.
type treeOptions struct {
	dbOptions
	dir        string
	maxRetire  string
	secretsDir string
	budget     reconciler.RetireBudget
	// grants is the loader's secret grant check (executor.Secrets.Grants).
	grants func(tenant, name string) error
}

func (o *treeOptions) flags(f *flagSet) {
	o.dbOptions.flags(f)
	f.string(&o.dir, "dir", "TASKSYNC_DIR", "./tasks.d", "the definitions `tree`")
	secretsDirFlag(f, &o.secretsDir)
	f.string(&o.maxRetire, "max-retire", "TASKSYNC_MAX_RETIRE", "half",
		"prune `budget` per tenant and reconcile: half (hold retirements of more than half, or all, of a tenant's definitions), all, or a number")
}

func (o *treeOptions) check() error {
	b, err := reconciler.ParseRetireBudget(o.maxRetire)
	if err != nil {
		return usageError("%v", err)
	}
	o.budget = b
	info, err := os.Stat(o.dir)
	if err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("definitions tree: %w", err)}
	}
	if !info.IsDir() {
		return &exitError{code: exitFailure, err: fmt.Errorf("definitions tree %s is not a directory", o.dir)}
	}
	return nil
}

// tree is the loader of the tree in o.dir; reuse is its
// definitions.Options.Reuse (0 for a command that loads the tree once).
func (o *treeOptions) tree(reuse time.Duration) (*definitions.Loader, error) {
	return definitions.NewDirLoader(o.dir, definitions.Options{Secrets: o.grants, Reuse: reuse})
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
func secretsDirFlag(f *flagSet, dir *string) {
	f.string(dir, "secrets-dir", "TASKSYNC_SECRETS_DIR", "",
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
	return nil, usageError("--log-format must be text or json, got %q", format)
}

// errExit1 ends a command with status 1 after it printed its own report.
var errExit1 = &exitError{code: exitFailure}

// flagSet is a command's flags, each backed by an environment variable.
type flagSet struct {
	cmd  command
	set  *flag.FlagSet
	envs map[string]string // flag name → environment variable
	out  io.Writer
	opts any // the command's options, filled by parse
}

func newFlagSet(c command, out io.Writer) *flagSet {
	fs := &flagSet{cmd: c, set: flag.NewFlagSet(c.name, flag.ContinueOnError), envs: map[string]string{}, out: out}
	fs.set.SetOutput(io.Discard)
	return fs
}

func (f *flagSet) string(p *string, name, env, def, usage string) {
	f.set.StringVar(p, name, def, usage)
	f.envs[name] = env
}

func (f *flagSet) duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	f.set.DurationVar(p, name, def, usage)
	f.envs[name] = env
}

func (f *flagSet) int(p *int, name, env string, def int, usage string) {
	f.set.IntVar(p, name, def, usage)
	f.envs[name] = env
}

func (f *flagSet) bool(p *bool, name, env string, usage string) {
	f.set.BoolVar(p, name, false, usage)
	f.envs[name] = env
}

// parse reads args, then fills every flag not given on the command line
// from its environment variable.
func (f *flagSet) parse(args []string, getenv func(string) string) error {
	if err := f.set.Parse(args); err != nil {
		if m := badFlagValue.FindStringSubmatch(err.Error()); m != nil {
			if fl := f.set.Lookup(m[2]); fl != nil {
				return fmt.Errorf("--%s %s: %s", fl.Name, m[1], valueProblem(fl))
			}
		}
		return err
	}
	given := map[string]bool{}
	f.set.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	var err error
	f.set.VisitAll(func(fl *flag.Flag) {
		env := f.envs[fl.Name]
		if given[fl.Name] || env == "" || err != nil {
			return
		}
		if v := getenv(env); v != "" {
			if e := fl.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %s", env, v, valueProblem(fl))
			}
		}
	})
	return err
}

// badFlagValue is the flag package's error for a value its type cannot
// read: the value (quoted) and the flag's name.
var badFlagValue = regexp.MustCompile(`^invalid value (".*") for flag -(\S+): (?:parse error|value out of range)$`)

// valueProblem says what is wrong with a value fl's type could not read,
// and what to write instead.
func valueProblem(fl *flag.Flag) string {
	g, _ := fl.Value.(flag.Getter)
	if g == nil {
		return "not a valid value"
	}
	switch g.Get().(type) {
	case bool:
		return "not a boolean; write true or false (or 1 or 0)"
	case time.Duration:
		return "not a duration; write e.g. 30s or 10m"
	case int:
		return "not a whole number; write e.g. 4"
	}
	return "not a valid value"
}

func (f *flagSet) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: tasksync %s [flags] %s\n\n%s.\n", f.cmd.name, f.cmd.args, strings.ToUpper(f.cmd.summary[:1])+f.cmd.summary[1:])
	if doc := commandDocs[f.cmd.name]; doc != "" {
		fmt.Fprintf(w, "\n%s", doc)
	}
	defer writeEnvAndExits(w, f.cmd.name)
	n := 0
	f.set.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	f.set.VisitAll(func(fl *flag.Flag) {
		line := fmt.Sprintf("  --%s", fl.Name)
		name, usage := flag.UnquoteUsage(fl)
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		if fl.DefValue != "" && fl.DefValue != "false" {
			usage += fmt.Sprintf(" (default %q)", fl.DefValue)
		}
		if env := f.envs[fl.Name]; env != "" {
			usage += fmt.Sprintf(" [$%s]", env)
		}
		fmt.Fprintf(w, "      %s\n", usage)
	})
}
