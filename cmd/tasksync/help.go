package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/riveredge/tasksync/reconciler/executor"
)

// envDoc is an environment variable a command reads besides its flags'
// own. A name ending in "<NAME>" stands for every variable with that
// prefix.
type envDoc struct {
	name, meaning string
}

// The variables of the Inngest SDK, read by the commands that reach
// Inngest.
var inngestEnv = []envDoc{
	{"INNGEST_DEV", "the Inngest dev server's URL (1 means http://127.0.0.1:8288); no signatures. run needs it or INNGEST_SIGNING_KEY"},
	{"INNGEST_SIGNING_KEY", "the signing key of a self-hosted or cloud Inngest server; signs and checks every call between it and the apps"},
	{"INNGEST_SIGNING_KEY_FALLBACK", "the previous signing key, accepted while keys rotate"},
	{"INNGEST_BASE_URL", "the self-hosted Inngest server's URL (default Inngest Cloud)"},
	{"INNGEST_EVENT_KEY", "the event key the daemon sends its events with: one-shot (at) events, the tasksync/fire.due events of intervals no cron states, and catch-up fires"},
	{"INNGEST_ENV", "the Inngest environment (branch) the apps belong to"},
}

var (
	grantEnv  = envDoc{executor.GrantEnvPrefix + "<NAME>", "the tenants a secret NAME is granted to (codes separated by commas or spaces, * for all)"}
	secretEnv = envDoc{executor.SecretEnvPrefix + "<NAME>", "the value of the secret NAME, for the tenants " + executor.GrantEnvPrefix + "<NAME> lists"}
)

// commandEnv lists, per command, the environment variables it reads
// besides those of its flags (which its help shows next to each flag).
// A command reading a variable not listed here or by a flag fails the
// package's tests (see undeclaredEnv).
var commandEnv = map[string][]envDoc{
	"run": append(append([]envDoc{}, inngestEnv...), secretEnv, grantEnv),
	"plan": {
		{grantEnv.name, grantEnv.meaning + "; without --secrets-dir, only the references whose grant is set are checked"},
	},
	"trigger": {
		{"INNGEST_DEV", "the Inngest dev server's URL (1 means http://127.0.0.1:8288); trigger needs it, or INNGEST_EVENT_KEY for a signed server"},
		{"INNGEST_EVENT_KEY", "the event key trigger sends tasksync/run with"},
		{"INNGEST_SIGNING_KEY", "the signing key --wait reads the run's id with, from Inngest's REST API"},
		{"INNGEST_BASE_URL", "the self-hosted Inngest server's URL (default Inngest Cloud)"},
		{"INNGEST_ENV", "the Inngest environment (branch) the apps belong to"},
	},
	"validate": {
		{grantEnv.name, grantEnv.meaning + "; without --secrets-dir, only the references whose grant is set are checked"},
		{"GOGC", "the Go collector's target; validate runs with 800 unless it is set"},
		{"GOMEMLIMIT", "the Go runtime's soft memory limit; validate runs with 192MiB unless it or GOGC is set"},
	},
}

// commandExits is, per command, what its exit statuses mean (the table
// in docs/operations.md).
var commandExits = map[string]string{
	"run": `0 on SIGINT/SIGTERM (SIGHUP rescans, it does not stop the daemon);
with --once: 0 applied, 1 errors, another replica leads, or changes
applied with no Inngest configured (unless --postgres-only); 2 usage
error (a bad flag, no --database-url, no INNGEST_DEV or
INNGEST_SIGNING_KEY).`,
	"plan":     `0 no changes, 1 problems, errors or a usage error, 2 changes pending (also while retirements are held).`,
	"validate": `0 all valid (warnings allowed), 1 problems found (or, with --strict, warnings), 2 usage or I/O error.`,
	"trigger": `0 sent (with --wait: the run succeeded), 1 refused, failed to send, or
(with --wait) the run failed, 2 usage error, 3 (with --wait) the run had
not ended within --timeout (it goes on).`,
	"migrate":    `0 applied or up to date, 1 error, 2 usage error.`,
	"schema":     `0, or 2 on a usage error.`,
	"version":    `0, or 2 on a usage error.`,
	"completion": `0, or 2 for an unknown shell.`,
	"help":       `0, or 2 for an unknown command.`,
}

// writeEnvAndExits writes the help's sections on the environment and the
// exit statuses of command name.
func writeEnvAndExits(w io.Writer, name string) {
	if envs := commandEnv[name]; len(envs) > 0 {
		fmt.Fprintln(w, "\nEnvironment (besides each flag's own, shown with the flag):")
		for _, e := range envs {
			fmt.Fprintf(w, "  $%s\n      %s\n", e.name, e.meaning)
		}
	}
	if ex := commandExits[name]; ex != "" {
		fmt.Fprintf(w, "\nExit status:\n  %s\n", strings.ReplaceAll(ex, "\n", "\n  "))
	}
}

// declaresEnv reports whether the help of the command fs parses names
// the variable name: one of its flags' or of commandEnv.
func (f *flagSet) declaresEnv(name string) bool {
	for _, env := range f.envs {
		if env == name {
			return true
		}
	}
	for _, e := range commandEnv[f.cmd.name] {
		if prefix, ok := strings.CutSuffix(e.name, "<NAME>"); ok && strings.HasPrefix(name, prefix) || e.name == name {
			return true
		}
	}
	return false
}

// undeclaredEnv, when set (by the tests), is told of every environment
// variable a command reads that its help does not name.
var undeclaredEnv func(command, name string)

// guardEnv returns getenv, reporting to undeclaredEnv every variable it
// is asked for that the help of fs's command does not name.
func (f *flagSet) guardEnv(getenv func(string) string) func(string) string {
	report := undeclaredEnv
	if report == nil {
		return getenv
	}
	return func(name string) string {
		if !f.declaresEnv(name) {
			report(f.cmd.name, name)
		}
		return getenv(name)
	}
}
