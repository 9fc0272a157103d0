package main

import (
	"github.com/riveredge/tasksync/internal/cli"
	"github.com/riveredge/tasksync/reconciler/executor"
)

// The variables of the Inngest SDK, read by the commands that reach
// Inngest.
var inngestEnv = []cli.EnvDoc{
	{Name: "INNGEST_DEV", Meaning: "the Inngest dev server's URL (1 means http://127.0.0.1:8288); no signatures. run needs it or INNGEST_SIGNING_KEY"},
	{Name: "INNGEST_SIGNING_KEY", Meaning: "the signing key of a self-hosted or cloud Inngest server; signs and checks every call between it and the apps"},
	{Name: "INNGEST_SIGNING_KEY_FALLBACK", Meaning: "the previous signing key, accepted while keys rotate"},
	{Name: "INNGEST_BASE_URL", Meaning: "the self-hosted Inngest server's URL (default Inngest Cloud)"},
	{Name: "INNGEST_EVENT_KEY", Meaning: "the event key the daemon sends its events with: one-shot (at) events, the tasksync/fire.due events of intervals no cron states, and catch-up fires"},
	{Name: "INNGEST_ENV", Meaning: "the Inngest environment (branch) the apps belong to"},
}

var (
	grantEnv  = cli.EnvDoc{Name: executor.GrantEnvPrefix + "<NAME>", Meaning: "the tenants a secret NAME is granted to (codes separated by commas or spaces, * for all)"}
	secretEnv = cli.EnvDoc{Name: executor.SecretEnvPrefix + "<NAME>", Meaning: "the value of the secret NAME, for the tenants " + executor.GrantEnvPrefix + "<NAME> lists"}
)

// commandEnv lists, per command, the environment variables it reads
// besides those of its flags (which its help shows next to each flag).
// A command reading a variable not listed here or by a flag fails the
// package's tests (see undeclaredEnv).
var commandEnv = map[string][]cli.EnvDoc{
	"run": append(append([]cli.EnvDoc{}, inngestEnv...), secretEnv, grantEnv),
	"plan": {
		{Name: grantEnv.Name, Meaning: grantEnv.Meaning + "; without --secrets-dir, only the references whose grant is set are checked"},
	},
	"trigger": {
		{Name: "INNGEST_DEV", Meaning: "the Inngest dev server's URL (1 means http://127.0.0.1:8288); trigger needs it, or INNGEST_EVENT_KEY for a signed server"},
		{Name: "INNGEST_EVENT_KEY", Meaning: "the event key trigger sends tasksync/run with"},
		{Name: "INNGEST_SIGNING_KEY", Meaning: "the signing key --wait reads the run's id with, from Inngest's REST API"},
		{Name: "INNGEST_BASE_URL", Meaning: "the self-hosted Inngest server's URL (default Inngest Cloud)"},
		{Name: "INNGEST_ENV", Meaning: "the Inngest environment (branch) the apps belong to"},
	},
	"validate": {
		{Name: grantEnv.Name, Meaning: grantEnv.Meaning + "; without --secrets-dir, only the references whose grant is set are checked"},
		{Name: "GOGC", Meaning: "the Go collector's target; validate runs with 800 unless it is set"},
		{Name: "GOMEMLIMIT", Meaning: "the Go runtime's soft memory limit; validate runs with 192MiB unless it or GOGC is set"},
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
