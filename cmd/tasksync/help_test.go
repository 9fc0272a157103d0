package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/riveredge/tasksync/internal/cli"
)

// helpOf is the output of "tasksync CMD -h".
func helpOf(t *testing.T, cmd string) string {
	t.Helper()
	out, errOut, code := runCmd(t, nil, cmd, "-h")
	if code != 0 {
		t.Fatalf("%s -h: exit %d: %s", cmd, code, errOut)
	}
	return out
}

// TestHelpListsExitsAndEnvironment: every command's help has its exit
// statuses and names every variable of commandEnv; the daemon's names the
// Inngest variables it refuses to start without.
func TestHelpListsExitsAndEnvironment(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.Name, func(t *testing.T) {
			help := helpOf(t, c.Name)
			if !strings.Contains(help, "\nExit status:\n") {
				t.Errorf("%s -h has no exit statuses:\n%s", c.Name, help)
			}
			for _, e := range commandEnv[c.Name] {
				if !strings.Contains(help, "$"+e.Name+"\n") {
					t.Errorf("%s -h does not name $%s", c.Name, e.Name)
				}
			}
		})
	}
	help := helpOf(t, "run")
	for _, v := range []string{"INNGEST_DEV", "INNGEST_SIGNING_KEY", "INNGEST_BASE_URL", "INNGEST_EVENT_KEY", "DATABASE_URL"} {
		if !strings.Contains(help, "$"+v) {
			t.Errorf("run -h does not name $%s:\n%s", v, help)
		}
	}
}

// TestEnvReadsAreInHelp drives each command through the paths that read
// the environment and checks that its help names every variable read
// (exactly, or as a family such as TASKSYNC_GRANT_<NAME>). TestMain
// checks the same for every other test that runs a command.
func TestEnvReadsAreInHelp(t *testing.T) {
	tree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "acme"), 0o755); err != nil {
		t.Fatal(err)
	}
	def := `apiVersion: tasksync/v1
kind: ScheduledTask
metadata: {code: report}
spec:
  trigger: {cron: "0 2 * * *"}
  type: api_call
  config: {url: "https://example.com/", headers: {Authorization: "Bearer ${secret:REPORT_TOKEN}"}}
`
	if err := os.WriteFile(filepath.Join(tree, "acme", "r.yaml"), []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := [][]string{
		{"validate", "--dir", tree},
		{"plan", "--dir", tree},
		{"run", "--dir", tree},
		{"run", "--once", "--dir", tree},
		{"migrate"},
		{"schema"},
		{"version"},
		{"completion", "bash"},
	}
	for _, args := range cases {
		t.Run(strings.Join(args[:1], ""), func(t *testing.T) {
			var mu sync.Mutex
			var read []string
			env := map[string]string{"INNGEST_DEV": "1", "TASKSYNC_GRANT_REPORT_TOKEN": "acme"}
			getenv := func(k string) string {
				mu.Lock()
				defer mu.Unlock()
				read = append(read, k)
				return env[k]
			}
			// No database: the commands that need one stop there, after
			// reading what comes before it.
			_ = run(t.Context(), args, getenv, &strings.Builder{}, &strings.Builder{})
			help := helpOf(t, args[0])
			fs := program().FlagSet(commandNamed(t, args[0]))
			slices.Sort(read)
			for _, name := range slices.Compact(read) {
				if !fs.DeclaresEnv(name) {
					t.Errorf("%s reads $%s, which its help does not name", args[0], name)
					continue
				}
				if !helpNames(help, name) {
					t.Errorf("%s reads $%s; its help does not show it:\n%s", args[0], name, help)
				}
			}
		})
	}
}

// helpNames reports whether help shows the variable name, itself or its
// family.
func helpNames(help, name string) bool {
	if strings.Contains(help, "$"+name+"]") || strings.Contains(help, "$"+name+"\n") {
		return true
	}
	for _, fam := range []string{"TASKSYNC_GRANT_", "TASKSYNC_SECRET_"} {
		if strings.HasPrefix(name, fam) && strings.Contains(help, "$"+fam+"<NAME>") {
			return true
		}
	}
	return false
}

func commandNamed(t *testing.T, name string) cli.Command {
	t.Helper()
	for _, c := range commands() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no command %q", name)
	return cli.Command{}
}
