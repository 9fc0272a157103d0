package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// runCmd calls run as main would and returns its output and exit code.
func runCmd(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	err := run(context.Background(), args, getenv, &out, &errb)
	code = program().ExitCode(err, &errb)
	return out.String(), errb.String(), code
}

// TestValidateGolden runs "tasksync validate" on every case under
// testdata/validate. A case is a directory whose tree/ is the definitions
// tree, validated as "tasksync validate --dir tree tree", or with the
// arguments in its args file instead of the last "tree", or with only the
// arguments in its argv file (no --dir: the default ./tasks.d, absent
// there, so that every path is outside the tree); want.txt holds
// the exit code and the text output, want.json the JSON output. Run with
// -update to rewrite them, and review the diff.
func TestValidateGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/validate/*/tree")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no cases under testdata/validate")
	}
	// Paths in the output are relative to the case directory.
	for _, tree := range cases {
		dir := filepath.Dir(tree)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Chdir(dir)
			args := []string{"validate", "--dir", "tree"}
			if b, err := os.ReadFile("argv"); err == nil {
				args = append([]string{"validate"}, strings.Fields(string(b))...)
			} else if b, err := os.ReadFile("args"); err == nil {
				args = append(args, strings.Fields(string(b))...)
			} else {
				args = append(args, "tree")
			}
			stdout, stderr, code := runCmd(t, nil, args...)
			golden(t, "want.txt", undated(fmt.Sprintf("exit %d\n%s%s", code, stdout, stderr)))
			jout, jerr, jcode := runCmd(t, nil, append([]string{args[0], "--format", "json"}, args[1:]...)...)
			if jcode != code {
				t.Errorf("exit code with --format json = %d, want %d as with text", jcode, code)
			}
			golden(t, "want.json", undated(jout+jerr))
		})
	}
}

// dstDate is a date as the daylight-saving warnings give it: they name
// the days of the coming year, so the golden files hold a placeholder.
var dstDate = regexp.MustCompile(`\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{4}-\d{2}-\d{2}\b`)

// undated replaces the dates of daylight-saving warnings in s.
func undated(s string) string { return dstDate.ReplaceAllString(s, "Day YYYY-MM-DD") }

// golden compares got with the file, or rewrites the file under -update.
func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

// TestExamplesValidate: every example and the sample tree make run serves
// are valid.
func TestExamplesValidate(t *testing.T) {
	// examples/ also holds monitoring and deployment files (in
	// sub-directories), which are no definitions: its definitions are
	// the files at its top, their scripts under examples/scripts.
	examples, err := filepath.Glob("../../examples/*.y*ml")
	if err != nil || len(examples) < 5 {
		t.Fatalf("the example definitions: %q, %v", examples, err)
	}
	for _, args := range [][]string{examples, {"../../tasks.d"}} {
		stdout, stderr, code := runCmd(t, nil, append([]string{"validate"}, args...)...)
		if code != 0 || !strings.HasPrefix(stdout, "ok: ") {
			t.Errorf("validate %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// TestValidateSecretGrantModes: validate checks grants where it can know
// them: every reference with --secrets-dir (or its variable), only the
// references whose TASKSYNC_GRANT_<NAME> is set without one, none with
// neither (the secrets live where tasksync runs).
func TestValidateSecretGrantModes(t *testing.T) {
	t.Chdir("testdata/validate/bad-secret-other-tenant")
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		refused int
	}{
		{"no secrets dir, no grants", nil, nil, 0},
		{"grant variable only", map[string]string{"TASKSYNC_GRANT_TOKEN": "acme", "TASKSYNC_SECRET_TOKEN": "v"}, nil, 3},
		{"secrets dir by variable", map[string]string{"TASKSYNC_SECRETS_DIR": "secrets"}, nil, 6},
		{"secrets dir by flag", nil, []string{"--secrets-dir", "secrets"}, 6},
		{"shared by variable to evil", map[string]string{"TASKSYNC_SECRETS_DIR": "secrets", "TASKSYNC_GRANT_NOBODY_HAS": "evil", "TASKSYNC_SECRET_NOBODY_HAS": "v"}, nil, 5},
		// A CI job has the grants, not the values: the grant is enough.
		{"grant variable without its value", map[string]string{"TASKSYNC_GRANT_TOKEN": "acme"}, nil, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"validate", "--dir", "tree"}, tc.args...), "tree")
			stdout, stderr, _ := runCmd(t, tc.env, args...)
			if got := strings.Count(stdout, "is not granted to tenant"); got != tc.refused {
				t.Errorf("%d refusals, want %d:\n%s%s", got, tc.refused, stdout, stderr)
			}
			if strings.Contains(stdout, "acme-token-value") {
				t.Errorf("validate printed a secret's value:\n%s", stdout)
			}
		})
	}
}

// TestValidateMissingSecretsDir: a mistyped --secrets-dir is one I/O
// error (exit 2), not a "not granted" problem for every reference.
func TestValidateMissingSecretsDir(t *testing.T) {
	t.Chdir("testdata/validate/bad-secret-other-tenant")
	for _, dir := range []string{"no-such-dir", "tree/evil/steal.yaml"} {
		stdout, stderr, code := runCmd(t, nil, "validate", "--dir", "tree", "--secrets-dir", dir, "tree")
		if code != 2 || !strings.Contains(stderr, "secrets directory") || strings.Contains(stdout, "is not granted") {
			t.Errorf("--secrets-dir %s: exit %d, want 2 and one error about the secrets directory\n%s%s", dir, code, stdout, stderr)
		}
	}
}

// TestValidateMaxDefinitions: validate applies --max-definitions as the
// daemon does: the sample tree passes by default and fails, naming the
// tenant's directory, the count and the limit, under a limit of one.
func TestValidateMaxDefinitions(t *testing.T) {
	if stdout, stderr, code := runCmd(t, nil, "validate", "--dir", "../../tasks.d"); code != 0 {
		t.Fatalf("validate the sample tree: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code := runCmd(t, nil, "validate", "--dir", "../../tasks.d", "--max-definitions", "1")
	if code != 1 || !regexp.MustCompile(`tasks\.d/acme: the tenant has \d+ definitions, more than the 1 a tenant may have \(--max-definitions\)`).MatchString(stdout+stderr) {
		t.Errorf("validate --max-definitions 1: exit %d\n%s%s", code, stdout, stderr)
	}
}
