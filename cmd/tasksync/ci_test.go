package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// checkInvocations checks every "tasksync CMD [flags]" in a shell script
// or an entry: the command exists and takes the flags given.
func checkInvocations(t *testing.T, where, script string) int {
	t.Helper()
	n := 0
	for _, m := range regexp.MustCompile(`(?m)(?:^[ \t]*|[;&|(][ \t]*)tasksync[ \t]+([^\n;&|)>]*)`).FindAllStringSubmatch(script, -1) {
		words := strings.Fields(m[1])
		if len(words) == 0 {
			continue
		}
		c := commandNamed(t, words[0])
		fs := program().FlagSet(c)
		for _, w := range words[1:] {
			if !strings.HasPrefix(w, "-") {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
			if fs.Set.Lookup(name) == nil {
				t.Errorf("%s: tasksync %s has no flag %s", where, c.Name, w)
			}
		}
		n++
	}
	return n
}

// workflowStep is a step of a GitHub Actions job.
type workflowStep struct {
	ID    string            `yaml:"id"`
	Name  string            `yaml:"name"`
	Uses  string            `yaml:"uses"`
	Run   string            `yaml:"run"`
	Shell string            `yaml:"shell"`
	With  map[string]string `yaml:"with"`
	Env   map[string]string `yaml:"env"`
}

type workflow struct {
	Name        string            `yaml:"name"`
	On          map[string]any    `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Env         map[string]string `yaml:"env"`
	Jobs        map[string]struct {
		Needs          any               `yaml:"needs"`
		If             string            `yaml:"if"`
		RunsOn         string            `yaml:"runs-on"`
		TimeoutMinutes int               `yaml:"timeout-minutes"`
		Env            map[string]string `yaml:"env"`
		Steps          []workflowStep    `yaml:"steps"`
	} `yaml:"jobs"`
}

// TestGitHubWorkflow: the example workflow parses (only the keys GitHub
// knows), its scripts are valid bash naming real commands and flags, and
// its validate and plan steps, run with the real binary against a real
// database, annotate problems and post the plan as the summary: exit 2
// of plan is "changes pending", and a definition's values cannot write
// markup into the summary.
func TestGitHubWorkflow(t *testing.T) {
	b, err := os.ReadFile("../../examples/ci/github-actions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var wf workflow
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&wf); err != nil {
		t.Fatalf("github-actions.yaml: %v", err)
	}
	steps := map[string]workflowStep{}
	invocations := 0
	for jobName, job := range wf.Jobs {
		for _, s := range job.Steps {
			if s.Run == "" {
				continue
			}
			if strings.Contains(s.Run, "${{") {
				t.Errorf("job %s, step %q: an expression inside run: (script injection); pass it through env:", jobName, s.Name)
			}
			if out, err := exec.Command("bash", "-n", "-c", s.Run).CombinedOutput(); err != nil {
				t.Errorf("job %s, step %q: bash -n: %v\n%s", jobName, s.Name, err, out)
			}
			invocations += checkInvocations(t, "github-actions.yaml", s.Run)
			if s.ID != "" {
				steps[s.ID] = s
			}
			if strings.Contains(s.Run, "go install") && !strings.Contains(s.Run, "github.com/riveredge/tasksync/cmd/tasksync@") {
				t.Errorf("job %s installs something other than cmd/tasksync: %s", jobName, s.Run)
			}
		}
	}
	if invocations < 2 || steps["validate"].Run == "" || steps["plan"].Run == "" {
		t.Fatalf("the workflow lacks its validate and plan steps (%d invocations)", invocations)
	}

	bin := buildBinary(t)
	binDir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(binDir, "tasksync")); err != nil {
		t.Fatal(err)
	}
	// runStep runs a step's script as the runner does (bash -e), in a
	// checkout holding tree, and returns its exit status, output and
	// summary.
	runStep := func(s workflowStep, tree string, env ...string) (int, string, string) {
		t.Helper()
		work := t.TempDir()
		summary := filepath.Join(work, "summary.md")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", s.Run)
		cmd.Dir = work
		cmd.Env = append([]string{"PATH=" + binDir + ":/usr/bin:/bin", "HOME=" + work, "TASKSYNC_DIR=" + tree, "GITHUB_STEP_SUMMARY=" + summary}, env...)
		out, code := combinedExit(t, cmd)
		sum, _ := os.ReadFile(summary)
		return code, out, string(sum)
	}

	good := copyTree(t)
	if code, out, _ := runStep(steps["validate"], good); code != 0 {
		t.Errorf("validate step on the sample tree: exit %d\n%s", code, out)
	}
	bad := t.TempDir()
	if err := os.MkdirAll(filepath.Join(bad, "acme"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "acme", "r.yaml"), []byte("apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: r}\nspec:\n  trigger: {cron: \"0 2 * * *\", interval: 5m}\n  type: api_call\n  config: {url: \"https://example.com/\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runStep(steps["validate"], bad); code != 1 || !strings.Contains(out, "::error file="+bad+"/acme/r.yaml,line=5,col=") {
		t.Errorf("validate step on a bad tree: exit %d, want 1 and an annotation\n%s", code, out)
	}

	db := pg.NewDatabase(t)
	if _, errOut, code := runCmd(t, map[string]string{"DATABASE_URL": db}, "migrate"); code != 0 {
		t.Fatalf("migrate: %s", errOut)
	}
	hostile := filepath.Join(good, "acme", "hostile.yaml")
	writeHostile := func(path string) {
		t.Helper()
		doc := "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: hostile}\nspec:\n  trigger: {cron: \"0 2 * * *\"}\n  type: api_call\n  config: {url: \"https://example.com/" + path + "\"}\n"
		if err := os.WriteFile(hostile, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeHostile("a")
	if _, errOut, code := runCmd(t, map[string]string{"DATABASE_URL": db, "TASKSYNC_DIR": good, "TASKSYNC_POSTGRES_ONLY": "1", "TASKSYNC_SECRETS_DIR": sampleSecrets(t, "s3cr3t")}, "run", "--once"); code != 0 {
		t.Fatalf("run --once: %s", errOut)
	}
	if code, out, summary := runStep(steps["plan"], good, "DATABASE_URL="+db); code != 0 || !strings.Contains(summary, "no changes") {
		t.Errorf("plan step with nothing to change: exit %d, summary %q\n%s", code, summary, out)
	}
	// A value that would close the summary's <pre> and write a link.
	writeHostile("</pre><a href='https://evil.example'>x</a>")
	code, out, summary := runStep(steps["plan"], good, "DATABASE_URL="+db)
	if code != 0 || !strings.Contains(summary, "changes pending") || !strings.Contains(summary, "evil.example") {
		t.Errorf("plan step with changes pending: exit %d, summary %q\n%s", code, summary, out)
	}
	if strings.Count(summary, "<pre>") != 1 || strings.Count(summary, "</pre>") != 1 || strings.Contains(summary, "<a ") {
		t.Errorf("a definition wrote markup into the summary:\n%s", summary)
	}
	// A problem quotes the value as written: the plan fails, and the
	// summary shows it as text.
	bad2 := "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: hostile}\nspec:\n  trigger: {cron: \"</pre><a href='https://evil.example'>x</a>\"}\n  type: api_call\n  config: {url: \"https://example.com/\"}\n"
	if err := os.WriteFile(hostile, []byte(bad2), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, summary = runStep(steps["plan"], good, "DATABASE_URL="+db)
	if code != 1 || !strings.Contains(summary, "failed") || !strings.Contains(summary, "evil.example") {
		t.Errorf("plan step with a problem: exit %d, summary %q\n%s", code, summary, out)
	}
	if strings.Count(summary, "<pre>") != 1 || strings.Count(summary, "</pre>") != 1 || strings.Contains(summary, "<a ") {
		t.Errorf("a definition wrote markup into the summary:\n%s", summary)
	}
	if code, _, summary := runStep(steps["plan"], good, "DATABASE_URL=postgres://127.0.0.1:1/none?connect_timeout=2"); code == 0 || !strings.Contains(summary, "failed") {
		t.Errorf("plan step without a database: exit %d, want it to fail; summary %q", code, summary)
	}
}

// TestPreCommitHooks: .pre-commit-hooks.yaml parses into the keys
// pre-commit knows, each hook runs "tasksync validate" (a real command,
// real flags) on the files its pattern picks, and that run, with the real
// binary on the sample tree's files, passes.
func TestPreCommitHooks(t *testing.T) {
	b, err := os.ReadFile("../../.pre-commit-hooks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var hooks []struct {
		ID            string   `yaml:"id"`
		Name          string   `yaml:"name"`
		Description   string   `yaml:"description"`
		Entry         string   `yaml:"entry"`
		Language      string   `yaml:"language"`
		Files         string   `yaml:"files"`
		Types         []string `yaml:"types"`
		RequireSerial bool     `yaml:"require_serial"`
		PassFilenames *bool    `yaml:"pass_filenames"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&hooks); err != nil {
		t.Fatalf(".pre-commit-hooks.yaml: %v", err)
	}
	if len(hooks) == 0 {
		t.Fatal("no hooks")
	}
	bin := buildBinary(t)
	for _, h := range hooks {
		if h.ID == "" || h.Name == "" || h.Entry == "" {
			t.Errorf("hook %+v lacks id, name or entry", h)
		}
		switch h.Language {
		case "golang":
			// pre-commit builds the repository with go install ./...:
			// the binary it puts on PATH is named after cmd/tasksync.
			if _, err := os.Stat("../../cmd/tasksync/main.go"); err != nil {
				t.Errorf("hook %s: language golang, but no cmd/tasksync: %v", h.ID, err)
			}
		case "system":
		default:
			t.Errorf("hook %s: language %q", h.ID, h.Language)
		}
		if !strings.HasPrefix(h.Entry, "tasksync validate") || checkInvocations(t, h.ID, h.Entry) != 1 {
			t.Errorf("hook %s: entry %q, want tasksync validate", h.ID, h.Entry)
		}
		files := regexp.MustCompile(h.Files)
		var picked []string
		err := filepath.WalkDir("../..", func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel("../..", p)
			if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if !d.IsDir() && files.MatchString(filepath.ToSlash(rel)) {
				picked = append(picked, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(picked) < 4 || !strings.HasPrefix(picked[0], "tasks.d/") {
			t.Errorf("hook %s picks %q, want the sample tree's definition files", h.ID, picked)
			continue
		}
		args := append(strings.Fields(h.Entry)[1:], picked...)
		cmd := exec.Command(bin, args...)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("hook %s: %s %s: %v\n%s", h.ID, h.Entry, strings.Join(picked, " "), err, out)
		}
	}
}
