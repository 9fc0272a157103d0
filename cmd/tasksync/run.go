package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/schema"
)

// version is set at build time: -ldflags "-X main.version=$(git describe)".
var version = "dev"

// Exit codes shared by the commands (the table in docs/operations.md).
const (
	exitOK      = 0
	exitFailure = 1 // invalid input, errors, or (plan) ...
	exitUsage   = 2 // usage or I/O errors that stop the run
)

// exitError carries a command's exit status. A nil err means the command
// already said everything it had to say.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError is a mistake in how the command was called.
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode prints err, if it has anything to say, and returns the status
// the process exits with.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "tasksync: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "tasksync: %v\n", err)
	return exitFailure
}

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis of the positional arguments
	summary string
	// usageExit is the status of a usage error; default exitUsage. plan
	// uses 2 for "changes pending", so its usage errors exit 1.
	usageExit int
	flags     func(*flagSet)
	run       func(ctx context.Context, c *invocation) error
}

// invocation is what a command runs with.
type invocation struct {
	flags  *flagSet
	args   []string
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	// hangups carries SIGHUP to `run`, whose daemon rescans on each; nil
	// for the other commands, which SIGHUP ends as it ends any process.
	hangups <-chan os.Signal
}

func commands() []command {
	return []command{
		{name: "run", summary: "the daemon: watch the tree, reconcile it with Postgres and Inngest, serve the apps (--once: one reconcile, then exit)", flags: runFlags, run: runRun},
		{name: "plan", summary: "show what a reconcile would change, per tenant, without writing", flags: planFlags, run: runPlan, usageExit: exitFailure},
		{name: "validate", args: "[PATH...]", summary: "check definition files and trees without Postgres or Inngest", flags: validateFlags, run: runValidate},
		{name: "trigger", args: "TENANT CODE", summary: "start one run of a task or workflow now, through Inngest (--wait: follow it to its end)", flags: triggerFlags, run: runTrigger},
		{name: "migrate", summary: "apply the database migrations", flags: migrateFlags, run: runMigrate},
		{name: "schema", summary: "print the JSON Schema of the definition format", run: runSchema},
		{name: "version", summary: "print the version", run: runVersion},
		{name: "completion", args: "bash|zsh|fish", summary: "print the shell completion script of tasksync", run: runCompletion},
		{name: "help", args: "[COMMAND]", summary: "show help for tasksync or a command", run: nil},
	}
}

// run is the whole program: main only translates its error to an exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == executor.SandboxInitArg {
		// This process is a python_script sandbox's init; it becomes the
		// interpreter, or returns why it could not.
		return &exitError{code: executor.SandboxInit()}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()

	if len(args) == 0 {
		printUsage(stderr)
		return &exitError{code: exitUsage}
	}
	name, rest := args[0], args[1:]
	var hangups chan os.Signal
	if name == "run" {
		// SIGHUP asks the daemon to rescan, as it asks Prometheus to
		// reload; it never ends it.
		hangups = make(chan os.Signal, 1)
		signal.Notify(hangups, syscall.SIGHUP)
		defer signal.Stop(hangups)
	}
	switch name {
	case "help", "-h", "-help", "--help":
		return runHelp(rest, stdout)
	case "--version", "-version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name != name || c.run == nil {
			continue
		}
		fs := newFlagSet(c, stderr)
		if c.flags != nil {
			c.flags(fs)
		}
		err := fs.parse(rest, getenv)
		switch {
		case errors.Is(err, flag.ErrHelp):
			fs.usage(stdout)
			return nil
		case err != nil:
			err = usageError("%s: %v (see 'tasksync %s -h')", c.name, err, c.name)
		default:
			err = c.run(ctx, &invocation{flags: fs, args: fs.set.Args(), getenv: fs.guardEnv(getenv), stdout: stdout, stderr: stderr, hangups: hangups})
		}
		var ee *exitError
		if c.usageExit != 0 && errors.As(err, &ee) && ee.code == exitUsage && ee.err != nil {
			ee.code = c.usageExit
		}
		return err
	}
	return usageError("unknown command %q (see 'tasksync help')", name)
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `tasksync reconciles per-tenant YAML definitions of scheduled tasks and
workflows with Postgres and Inngest.

Usage:
  tasksync <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every flag can also be set by the environment variable shown in the
command's help. Run 'tasksync <command> -h' for a command's flags.
`)
}

func runHelp(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		printUsage(stdout)
		return nil
	}
	name := args[0]
	if name == "-h" || name == "-help" || name == "--help" {
		name = "help"
	}
	for _, c := range commands() {
		if c.name == name {
			fs := newFlagSet(c, stdout)
			if c.flags != nil {
				c.flags(fs)
			}
			fs.usage(stdout)
			return nil
		}
	}
	return usageError("unknown command %q (see 'tasksync help')", args[0])
}

func runSchema(_ context.Context, c *invocation) error {
	if len(c.args) > 0 {
		return usageError("schema takes no arguments")
	}
	_, err := c.stdout.Write(schema.Definition)
	return err
}

func runVersion(_ context.Context, c *invocation) error {
	if len(c.args) > 0 {
		return usageError("version takes no arguments")
	}
	fmt.Fprintf(c.stdout, "tasksync %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// commandDocs is the longer help of each command.
var commandDocs = map[string]string{
	"trigger": `Starts one run of the definition CODE of TENANT now, whatever its trigger
(cron, interval, at or event), by sending Inngest the event tasksync/run
with data {"tenant_id": TENANT, "code": CODE, "hash": <its applied
version>, ...--data}. Every function listens for it, guarded by its
tenant and code, so the event starts exactly that function. The run is
recorded like any other, marked "trigger": "manual" in the status API.

The definition is read from Postgres first: an unknown, retired or
inactive definition is refused here, and so is one whose applied version
is not --hash, when given. The function refuses the run again if the
version the event names is no longer the applied one.

Without --wait, trigger prints the event's id and exits. With --wait, it
learns the run's id from Inngest (its REST API, GET /v1/events/<id>/runs)
and follows the run in tasksync's run records in Postgres until its final
attempt ends; it prints the outcome (a workflow's steps, each with its
outcome and output; a task's output; the error) and where to read the
run (the status API's /v1/runs/<run id>, the web page /ui/runs/<run id>),
and exits with it.
`,
	"validate": `Each PATH is a definitions tree (its sub-directories are tenants), a
tenant directory (a directory that holds .yaml/.yml files itself), or a
single file, checked as part of the tenant named by the directory that
holds it. Without PATH, the tree in $TASKSYNC_DIR or ./tasks.d is checked.

Every problem is printed as "path:line:col: message", sorted by path and
line, followed by a summary; a warning as "path:line:col: warning: message"
(in JSON, "severity": "warning"). Warnings (a one-shot whose time has
passed, a cron time that a daylight-saving change skips or repeats) fail
nothing unless --strict is given.

With --format github, each problem is a GitHub Actions annotation
("::error file=PATH,line=N,col=N::message", a warning as "::warning"),
shown on the pull request's lines, then the summary.
`,
}
