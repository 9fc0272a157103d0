package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
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
	code = exitCode(err, &errb)
	return out.String(), errb.String(), code
}

// TestValidateGolden runs "tasksync validate" on every case under
// testdata/validate. A case is a directory whose tree/ is the definitions
// tree, validated as "tasksync validate --dir tree tree", or with the
// arguments in its args file instead of the last "tree"; want.txt holds
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
			if b, err := os.ReadFile("args"); err == nil {
				args = append(args, strings.Fields(string(b))...)
			} else {
				args = append(args, "tree")
			}
			stdout, stderr, code := runCmd(t, nil, args...)
			golden(t, "want.txt", fmt.Sprintf("exit %d\n%s%s", code, stdout, stderr))
			jout, jerr, jcode := runCmd(t, nil, append([]string{args[0], "--format", "json"}, args[1:]...)...)
			if jcode != code {
				t.Errorf("exit code with --format json = %d, want %d as with text", jcode, code)
			}
			golden(t, "want.json", jout+jerr)
		})
	}
}

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
	for _, dir := range []string{"../../examples", "../../tasks.d"} {
		stdout, stderr, code := runCmd(t, nil, "validate", dir)
		if code != 0 || !strings.HasPrefix(stdout, "ok: ") {
			t.Errorf("validate %s: exit %d\n%s%s", dir, code, stdout, stderr)
		}
	}
}
