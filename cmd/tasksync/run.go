package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/riveredge/tasksync/internal/cli"
	"github.com/riveredge/tasksync/reconciler/executor"
	"github.com/riveredge/tasksync/schema"
)

// version is set at build time: -ldflags "-X main.version=$(git describe)".
var version = "dev"

// undeclaredEnv, when set (by the tests), is told of every environment
// variable a command reads that its help does not name.
var undeclaredEnv func(command, name string)

// program is tasksync's table of commands.
func program() *cli.Program {
	return &cli.Program{Name: "tasksync", Commands: commands, FlagValues: flagValues, FlagKinds: flagKinds, Undeclared: undeclaredEnv,
		Intro: `tasksync reconciles per-tenant YAML definitions of scheduled tasks and
workflows with Postgres and Inngest.
`}
}

func commands() []cli.Command {
	cmds := []cli.Command{
		{Name: "run", Summary: "the daemon: watch the tree, reconcile it with Postgres and Inngest, serve the apps (--once: one reconcile, then exit)", Flags: runFlags, Run: runRun},
		{Name: "plan", Summary: "show what a reconcile would change, per tenant, without writing", Flags: planFlags, Run: runPlan, UsageExit: cli.ExitFailure},
		{Name: "validate", Args: "[PATH...]", Summary: "check definition files and trees without Postgres or Inngest", Flags: validateFlags, Run: runValidate,
			Complete: "files", FlagValues: map[string][]string{"format": validateFormats}},
		{Name: "trigger", Args: "TENANT CODE", Summary: "start one run of a task or workflow now, through Inngest (--wait: follow it to its end)", Flags: triggerFlags, Run: runTrigger},
		{Name: "migrate", Summary: "apply the database migrations", Flags: migrateFlags, Run: runMigrate},
		{Name: "schema", Summary: "print the JSON Schema of the definition format", Run: runSchema},
		{Name: "version", Summary: "print the version", Run: runVersion},
		{Name: "completion", Args: "bash|zsh|fish", Summary: "print the shell completion script of tasksync", Run: runCompletion, Complete: "shells"},
		{Name: "help", Args: "[COMMAND]", Summary: "show help for tasksync or a command", Complete: "commands"},
	}
	for i := range cmds {
		c := &cmds[i]
		c.Doc, c.Env, c.Exits = commandDocs[c.Name], commandEnv[c.Name], commandExits[c.Name]
	}
	return cmds
}

// run is the whole program: main only translates its error to an exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == executor.SandboxInitArg {
		// This process is a python_script sandbox's init; it becomes the
		// interpreter, or returns why it could not.
		return &cli.ExitError{Code: executor.SandboxInit()}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	var hangups chan os.Signal
	if len(args) > 0 && args[0] == "run" {
		// SIGHUP asks the daemon to rescan, as it asks Prometheus to
		// reload; it never ends it.
		hangups = make(chan os.Signal, 1)
		signal.Notify(hangups, syscall.SIGHUP)
		defer signal.Stop(hangups)
	}
	return program().Run(ctx, args, getenv, stdout, stderr, hangups)
}

func runSchema(_ context.Context, c *cli.Invocation) error {
	if len(c.Args) > 0 {
		return cli.UsageError("schema takes no arguments")
	}
	_, err := c.Stdout.Write(schema.Definition)
	return err
}

func runVersion(_ context.Context, c *cli.Invocation) error {
	if len(c.Args) > 0 {
		return cli.UsageError("version takes no arguments")
	}
	fmt.Fprintf(c.Stdout, "tasksync %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// runCompletion writes the completion script of the shell its argument
// names.
func runCompletion(_ context.Context, c *cli.Invocation) error {
	if len(c.Args) != 1 {
		return cli.UsageError("completion takes one argument: %s", strings.Join(cli.Shells, ", "))
	}
	return program().WriteCompletion(c.Stdout, c.Args[0])
}

// flagValues are the values of the flags that take one of a few, as the
// completion scripts offer them (validate's --format: its own).
var flagValues = map[string][]string{
	"format":         {formatText, formatJSON},
	"log-format":     {"text", "json"},
	"max-retire":     {"half", "all"},
	"sandbox-cgroup": {"auto", "none"},
}

// flagKinds are the flags whose value is a directory or a file.
var flagKinds = map[string]string{
	"dir":                "dir",
	"secrets-dir":        "dir",
	"status-tokens-file": "file",
	"python":             "file",
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
