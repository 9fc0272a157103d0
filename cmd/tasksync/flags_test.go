package main

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/internal/cli"
)

// TestEnvBadValues: a variable backing a flag of every command that
// holds a value its type cannot read is refused with a message naming
// the variable, the value, what is wrong with it and what to write; so is
// the flag given on the command line.
func TestEnvBadValues(t *testing.T) {
	checked := map[string]bool{}
	for _, c := range commands() {
		if c.Flags == nil || c.Run == nil {
			continue
		}
		fs := program().FlagSet(c)
		usage := cli.ExitUsage
		if c.UsageExit != 0 {
			usage = c.UsageExit // plan: 2 means changes pending
		}
		fs.Set.VisitAll(func(fl *flag.Flag) {
			g, _ := fl.Value.(flag.Getter)
			var want string
			switch g.Get().(type) {
			case bool:
				want = "not a boolean; write true or false (or 1 or 0)"
			case time.Duration:
				want = "not a duration; write e.g. 30s or 10m"
			case int:
				want = "not a whole number; write e.g. 4"
			default:
				return
			}
			if env := fs.Envs[fl.Name]; env != "" {
				checked[env] = true
				_, errOut, code := runCmd(t, map[string]string{env: "yes please"}, c.Name)
				if code != usage || !strings.Contains(errOut, env+`="yes please": `+want) {
					t.Errorf("%s with %s=\"yes please\": exit %d, want %d and %q:\n%s", c.Name, env, code, usage, want, errOut)
				}
			}
			if _, ok := g.Get().(bool); ok {
				return
			}
			_, errOut, code := runCmd(t, nil, c.Name, "--"+fl.Name, "bad")
			if code != usage || !strings.Contains(errOut, `--`+fl.Name+` "bad": `+want) {
				t.Errorf("%s --%s bad: exit %d, want %d and %q:\n%s", c.Name, fl.Name, code, usage, want, errOut)
			}
		})
	}
	for _, env := range []string{"TASKSYNC_STRICT", "TASKSYNC_TRIGGER_TIMEOUT", "TASKSYNC_SYNC_CONCURRENCY"} {
		if !checked[env] {
			t.Errorf("%s was not checked", env)
		}
	}
	_, errOut, _ := runCmd(t, map[string]string{"TASKSYNC_TRIGGER_TIMEOUT": "bad"}, "trigger", "acme", "nightly")
	if want := `TASKSYNC_TRIGGER_TIMEOUT="bad": not a duration; write e.g. 30s or 10m`; !strings.Contains(errOut, want) {
		t.Errorf("trigger with TASKSYNC_TRIGGER_TIMEOUT=bad: %s, want %q", errOut, want)
	}
}
