package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/internal/cli"
)

// completionScript writes "tasksync completion SHELL" to a file.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	out, errOut, code := runCmd(t, nil, "completion", shell)
	if code != 0 {
		t.Fatalf("completion %s: exit %d: %s", shell, code, errOut)
	}
	p := filepath.Join(t.TempDir(), "tasksync."+shell)
	if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// shellOut runs a shell program and returns its output.
func shellOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (.ci/run installs it): %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + cmd.Dir, "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// flagNames are the flags of a command, as --name, sorted.
func flagNames(t *testing.T, cmd string) []string {
	t.Helper()
	c := commandNamed(t, cmd)
	fs := program().FlagSet(c)
	var out []string
	for name := range fs.Envs {
		out = append(out, "--"+name)
	}
	slices.Sort(out)
	return out
}

// TestCompletionBash sources the bash script in bash and checks what
// compgen offers: the commands, each command's flags exactly, the values
// of --format, the shells.
func TestCompletionBash(t *testing.T) {
	script := completionScript(t, "bash")
	complete := func(words ...string) []string {
		t.Helper()
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, cli.ShellWord(w))
		}
		prog := "source " + cli.ShellWord(script) + "\n" +
			"complete -p tasksync\n" +
			"COMP_WORDS=(" + strings.Join(quoted, " ") + ")\n" +
			"COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n" +
			"_tasksync\n" +
			"printf '%s\\n' \"${COMPREPLY[@]}\"\n"
		out := shellOut(t, "bash", "--norc", "--noprofile", "-c", prog)
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if len(lines) == 0 || !strings.Contains(lines[0], "-F _tasksync tasksync") {
			t.Fatalf("the script did not register _tasksync for tasksync: %q", out)
		}
		got := slices.DeleteFunc(lines[1:], func(s string) bool { return s == "" })
		slices.Sort(got)
		return got
	}
	var all []string
	for _, c := range commands() {
		all = append(all, c.Name)
	}
	slices.Sort(all)
	if got := complete("tasksync", ""); !slices.Equal(got, all) {
		t.Errorf("tasksync <TAB> = %q, want %q", got, all)
	}
	if got := complete("tasksync", "va"); !slices.Equal(got, []string{"validate"}) {
		t.Errorf("tasksync va<TAB> = %q, want validate", got)
	}
	for _, c := range commands() {
		if got, want := complete("tasksync", c.Name, "--"), flagNames(t, c.Name); !slices.Equal(got, want) && len(want) > 0 {
			t.Errorf("tasksync %s --<TAB> = %q, want %q", c.Name, got, want)
		}
	}
	if got := complete("tasksync", "validate", "--format", ""); !slices.Equal(got, []string{"github", "json", "text"}) {
		t.Errorf("tasksync validate --format <TAB> = %q", got)
	}
	if got := complete("tasksync", "plan", "--format", ""); !slices.Equal(got, []string{"json", "text"}) {
		t.Errorf("tasksync plan --format <TAB> = %q", got)
	}
	if got := complete("tasksync", "completion", ""); !slices.Equal(got, []string{"bash", "fish", "zsh"}) {
		t.Errorf("tasksync completion <TAB> = %q", got)
	}
	if got := complete("tasksync", "run", "--once", "--sandbox-cg"); !slices.Equal(got, []string{"--sandbox-cgroup"}) {
		t.Errorf("tasksync run --once --sandbox-cg<TAB> = %q", got)
	}
}

// TestCompletionFish loads the fish script in fish and asks fish itself
// for the completions.
func TestCompletionFish(t *testing.T) {
	script := completionScript(t, "fish")
	complete := func(line string) []string {
		t.Helper()
		out := shellOut(t, "fish", "--no-config", "-c", "source "+cli.ShellWord(script)+"; complete -C "+cli.ShellWord(line))
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if w, _, _ := strings.Cut(l, "\t"); w != "" {
				got = append(got, w)
			}
		}
		slices.Sort(got)
		return got
	}
	if got := complete("tasksync val"); !slices.Equal(got, []string{"validate"}) {
		t.Errorf("tasksync val<TAB> = %q", got)
	}
	for _, c := range commands() {
		want := flagNames(t, c.Name)
		if len(want) == 0 {
			continue
		}
		if got := complete("tasksync " + c.Name + " --"); !slices.Equal(got, want) {
			t.Errorf("tasksync %s --<TAB> = %q, want %q", c.Name, got, want)
		}
	}
	if got := complete("tasksync validate --format "); !slices.Equal(got, []string{"github", "json", "text"}) {
		t.Errorf("tasksync validate --format <TAB> = %q", got)
	}
}

// TestCompletionZsh checks the zsh script's syntax with zsh and that it
// offers every command and flag.
func TestCompletionZsh(t *testing.T) {
	script := completionScript(t, "zsh")
	shellOut(t, "zsh", "-n", script)
	// Loaded into a zsh with completion initialised, it registers itself.
	out := shellOut(t, "zsh", "-f", "-c", "autoload -Uz compinit && compinit -u -D && source "+cli.ShellWord(script)+" && print -r -- $_comps[tasksync]")
	if strings.TrimSpace(out) != "_tasksync" {
		t.Errorf("zsh: tasksync completes with %q, want _tasksync", out)
	}
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range commands() {
		if !strings.Contains(string(b), "\n    "+c.Name+")\n") {
			t.Errorf("zsh script has no case for %s", c.Name)
		}
		for _, f := range flagNames(t, c.Name) {
			if !strings.Contains(string(b), "'"+f+"[") && !strings.Contains(string(b), "'"+f+"=[") {
				t.Errorf("zsh script does not offer %s %s", c.Name, f)
			}
		}
	}
}

func TestCompletionUnknownShell(t *testing.T) {
	if _, errOut, code := runCmd(t, nil, "completion", "powershell"); code != cli.ExitUsage || !strings.Contains(errOut, "bash, zsh, fish") {
		t.Errorf("completion powershell: exit %d, %q", code, errOut)
	}
}
