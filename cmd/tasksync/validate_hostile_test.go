package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/riveredge/tasksync/internal/cli"
	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/waittest"
)

// unsafeRune reports whether r, printed raw, could move the cursor, change
// colours, forge a line or reorder text on a terminal or in a CI log.
func unsafeRune(r rune) bool {
	return r == utf8.RuneError || (r != ' ' && !unicode.IsPrint(r))
}

// checkOutputSafe fails when text or JSON output holds a character that
// reaches a terminal raw.
func checkOutputSafe(t *testing.T, what, out string) {
	t.Helper()
	for i, line := range strings.Split(out, "\n") {
		if !utf8.ValidString(line) {
			t.Errorf("%s line %d is not valid UTF-8: %q", what, i+1, line)
		}
		if j := strings.IndexFunc(line, unsafeRune); j >= 0 {
			t.Errorf("%s line %d holds a raw control or invisible character at byte %d: %q", what, i+1, j, line)
		}
	}
}

// TestValidateEscapesNames: a file or directory name with a newline, an
// ANSI escape, a bidi override or invalid UTF-8 is shown escaped in every
// format, so it can neither forge a problem line nor reach the terminal.
func TestValidateEscapesNames(t *testing.T) {
	bad := "kind: Nope\n"
	cases := []struct {
		name     string
		files    map[string]string
		wantText string
	}{{
		name:     "newline forges a line",
		files:    map[string]string{"acme/x.yaml\nacme-ok.yaml:1:1: all good.yaml": bad},
		wantText: `tree/acme/x.yaml\nacme-ok.yaml:1:1: all good.yaml: the name holds a control`,
	}, {
		name:     "ANSI escape",
		files:    map[string]string{"acme/\x1b[2J\x1b[31mred.yaml": bad},
		wantText: `tree/acme/\x1b[2J\x1b[31mred.yaml: the name holds a control`,
	}, {
		name:     "bidi override and C1 CSI",
		files:    map[string]string{"acme/a\u202egpj.yaml": bad, "acme/b\u009b31m.yaml": bad},
		wantText: "tree/acme/a\\u202egpj.yaml: the name holds a control",
	}, {
		name:     "invalid UTF-8",
		files:    map[string]string{"acme/\xff\xfe.yaml": bad},
		wantText: `tree/acme/\xff\xfe.yaml: the name holds a control`,
	}, {
		name:     "top-level directory",
		files:    map[string]string{"\x1b]0;owned\x07/x.yaml": bad},
		wantText: `tree/\x1b]0;owned\a: directory "\x1b]0;owned\a" is not a valid tenant code`,
	}, {
		name:     "symlink target",
		files:    map[string]string{"acme/ok.yaml": "apiVersion: tasksync/v1\n"},
		wantText: `-> ../../\x1b[31mx`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := deftest.WriteTree(t, tc.files)
			if tc.name == "symlink target" {
				if err := os.Symlink("../../\x1b[31mx", filepath.Join(root, "acme", "l.yaml")); err != nil {
					t.Fatal(err)
				}
			}
			stdout, stderr := validateAsTree(t, root)
			checkOutputSafe(t, "text output", stdout+stderr)
			if !strings.Contains(stdout, tc.wantText) {
				t.Errorf("text output lacks %q:\n%s", tc.wantText, stdout)
			}
			jout, jerr, _ := runCmd(t, nil, "validate", "--format", "json", "--dir", "tree", "tree")
			var ps []reconciler.Problem
			if err := json.Unmarshal([]byte(jout), &ps); err != nil {
				t.Fatalf("json output: %v\n%s%s", err, jout, jerr)
			}
			for _, p := range ps {
				// What a JSON consumer prints after decoding must be safe too.
				checkOutputSafe(t, "decoded JSON problem", p.String())
			}
		})
	}
}

// TestValidateHardLinkRefused: a definition file with a second hard link
// (here to a secret outside the tree, as a link to /etc/shadow would be)
// is refused, and nothing of its content is quoted.
func TestValidateHardLinkRefused(t *testing.T) {
	root := deftest.WriteTree(t, map[string]string{"acme/ok.yaml": deftest.Task{Code: "ok"}.String()})
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("root:$y$j9T$SECRETHASH:19000:0:99999:7:::\n- daemon: *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(secret, filepath.Join(root, "acme", "x.yaml")); err != nil {
		t.Skipf("hard links not possible here: %v", err)
	}
	stdout, stderr := validateAsTree(t, root)
	if strings.Contains(stdout+stderr, "SECRETHASH") || strings.Contains(stdout+stderr, "daemon") {
		t.Errorf("output quotes the hard-linked file's content:\n%s%s", stdout, stderr)
	}
	want := "tree/acme/x.yaml: the file has 2 hard links; refused"
	if !strings.Contains(stdout, want) {
		t.Errorf("output lacks %q:\n%s%s", want, stdout, stderr)
	}
}

// validateAsTree runs validate in root's parent directory with root
// named "tree", so that problem paths read "tree/...", and fails the test
// unless it finds problems (exit 1).
func validateAsTree(t *testing.T, root string) (stdout, stderr string) {
	t.Helper()
	t.Chdir(filepath.Dir(root))
	if err := os.Rename(filepath.Base(root), "tree"); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCmd(t, nil, "validate", "--dir", "tree", "tree")
	if code != cli.ExitFailure {
		t.Fatalf("exit %d, want %d\n%s%s", code, cli.ExitFailure, stdout, stderr)
	}
	return stdout, stderr
}

// maxProblemLine bounds a problem line: a message quotes at most a short
// excerpt of what a file holds.
const maxProblemLine = 600

// TestValidateQuotesShortExcerpts: a file that is one huge line is never
// quoted back beyond a short excerpt, whichever check complains.
func TestValidateQuotesShortExcerpts(t *testing.T) {
	huge := strings.Repeat("A", 200<<10)
	cases := map[string]string{
		"yaml hint":      "x: @" + huge + "\n",
		"unknown field":  "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: a}\n" + huge + ": 1\n",
		"duplicate key":  huge + ": 1\n" + huge + ": 2\n",
		"invalid bool":   "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: a}\nspec: {active: !!bool " + huge + "}\n",
		"url":            "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: a}\nspec: {trigger: {interval: 5m}, type: api_call, config: {url: 'ftp://" + huge + "'}}\n",
		"label key":      "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: a, labels: {'-" + huge + "': x}}\nspec: {trigger: {interval: 5m}, type: api_call, config: {url: 'https://a.example.com'}}\n",
		"cron":           "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: a}\nspec: {trigger: {cron: '" + huge + "'}, type: api_call, config: {url: 'https://a.example.com'}}\n",
		"unknown anchor": "x: *" + huge + "\n",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			root := deftest.WriteTree(t, map[string]string{"acme/x.yaml": content})
			stdout, stderr, code := runCmd(t, nil, "validate", "--dir", root, root)
			if code != cli.ExitFailure {
				t.Fatalf("exit %d, want %d\n%.2000s%s", code, cli.ExitFailure, stdout, stderr)
			}
			for _, line := range strings.Split(stdout+stderr, "\n") {
				line = strings.TrimPrefix(line, root)
				if len(line) > maxProblemLine {
					t.Errorf("a problem line is %d bytes, want at most %d: %.300s...", len(line), maxProblemLine, line)
				}
			}
		})
	}
}

// TestValidateSIGTERMWhileOpenBlocks: a validate whose open of a file would
// block (another process holds a write lease on it, as a FIFO swapped in
// after stat would) neither blocks nor outlives a SIGTERM.
func TestValidateSIGTERMWhileOpenBlocks(t *testing.T) {
	root := deftest.WriteTree(t, map[string]string{"acme/x.yaml": deftest.Task{Code: "x"}.String()})
	leased := filepath.Join(root, "acme", "x.yaml")
	f, err := os.Open(leased)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A write lease makes every other open of the file wait for the lease
	// break time (45 s by default), and a non-blocking one fail at once.
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_SETLEASE, syscall.F_WRLCK); errno != 0 {
		t.Skipf("cannot take a file lease here: %v", errno)
	}
	bin := buildBinary(t)
	var out waittest.Buffer
	cmd := exec.Command(bin, "validate", "--dir", root, root)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	// Wait until validate has tried the file (the lease is breaking) or
	// has finished without waiting for it.
	exited := false
	waittest.For(t, "validate to open the leased file", 20*time.Second, func() bool {
		select {
		case err := <-done:
			done <- err
			exited = true
			return true
		default:
		}
		locks, _ := os.ReadFile("/proc/locks")
		return strings.Contains(string(locks), "BREAK")
	})
	if !exited {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		checkOutputSafe(t, "output", out.String())
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("validate still running 5 s after SIGTERM (blocked opening a leased file)\n%s", out.String())
	}
}
