package cli_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/internal/cli"
)

// greetOptions are the flags of the test program's one command.
type greetOptions struct {
	name  string
	every time.Duration
}

func testProgram(got *greetOptions, undeclared *[]string) *cli.Program {
	return &cli.Program{Name: "prog", Intro: "prog greets.\n",
		Undeclared: func(_, name string) { *undeclared = append(*undeclared, name) },
		Commands: func() []cli.Command {
			return []cli.Command{
				{Name: "greet", Args: "[WHO]", Summary: "say hello", UsageExit: cli.ExitFailure,
					Env: []cli.EnvDoc{{Name: "PROG_GREETING", Meaning: "the word to greet with"}}, Exits: "0 greeted, 1 refused.",
					Flags: func(f *cli.FlagSet) {
						o := &greetOptions{}
						f.String(&o.name, "name", "PROG_NAME", "world", "who to greet")
						f.Duration(&o.every, "every", "PROG_EVERY", time.Second, "how often")
						f.Opts = o
					},
					Run: func(_ context.Context, in *cli.Invocation) error {
						*got = *in.Flags.Opts.(*greetOptions)
						in.Getenv("PROG_GREETING")
						in.Getenv("PROG_SECRET")
						if len(in.Args) > 0 {
							return cli.UsageError("greet takes no arguments")
						}
						return nil
					}},
				{Name: "help", Summary: "show help"},
			}
		}}
}

// TestProgram: a flag not given is read from its variable, one given
// wins over it; a bad value names the variable and what to write; the
// command's usage errors exit with its UsageExit; a variable the help
// does not name is reported; the help shows flags, variables and exits.
func TestProgram(t *testing.T) {
	var got greetOptions
	var undeclared []string
	p := testProgram(&got, &undeclared)
	env := map[string]string{"PROG_NAME": "env", "PROG_EVERY": "2s"}
	getenv := func(k string) string { return env[k] }
	run := func(args ...string) (string, error) {
		var out, errOut strings.Builder
		err := p.Run(context.Background(), args, getenv, &out, &errOut, nil)
		return out.String() + errOut.String(), err
	}
	if _, err := run("greet", "--every", "3s"); err != nil || got.name != "env" || got.every != 3*time.Second {
		t.Errorf("greet --every 3s = %v, %+v; want the name from PROG_NAME and the flag's 3s", err, got)
	}
	if strings.Join(undeclared, ",") != "PROG_SECRET" {
		t.Errorf("undeclared = %v, want PROG_SECRET only", undeclared)
	}
	env["PROG_EVERY"] = "soon"
	var buf strings.Builder
	_, err := run("greet")
	if code := p.ExitCode(err, &buf); code != cli.ExitFailure || !strings.Contains(buf.String(), `prog: greet: PROG_EVERY="soon": not a duration; write e.g. 30s or 10m`) {
		t.Errorf("PROG_EVERY=soon: exit %d, %q", code, buf.String())
	}
	delete(env, "PROG_EVERY")
	var ee *cli.ExitError
	if _, err := run("greet", "someone"); !errors.As(err, &ee) || ee.Code != cli.ExitFailure {
		t.Errorf("greet someone = %v, want a usage error with greet's UsageExit", err)
	}
	if _, err := run("wave"); !errors.As(err, &ee) || ee.Code != cli.ExitUsage || !strings.Contains(err.Error(), "see 'prog help'") {
		t.Errorf("wave = %v, want an unknown command, exit 2", err)
	}
	help, _ := run("help", "greet")
	for _, want := range []string{"Usage: prog greet [flags] [WHO]", "Say hello.", "--every duration", `(default "1s") [$PROG_EVERY]`, "$PROG_GREETING\n", "Exit status:\n  0 greeted"} {
		if !strings.Contains(help, want) {
			t.Errorf("help greet lacks %q:\n%s", want, help)
		}
	}
	if usage, _ := run(); !strings.Contains(usage, "prog greets.\n\nUsage:\n  prog <command>") || !strings.Contains(usage, "greet      say hello") {
		t.Errorf("usage:\n%s", usage)
	}
}
