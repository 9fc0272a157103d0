package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riveredge/tasksync/internal/cli"
	"github.com/riveredge/tasksync/reconciler"
)

// parseGitHubCommand reads a workflow command line as the Actions runner
// does: "::name k=v,k=v::data", properties split at ',' and at the first
// '=', values and data unescaped. ok is false when the line is not one.
func parseGitHubCommand(line string) (name string, props map[string]string, data string, ok bool) {
	rest, found := strings.CutPrefix(line, "::")
	if !found {
		return "", nil, "", false
	}
	head, data, found := strings.Cut(rest, "::")
	if !found {
		return "", nil, "", false
	}
	name, propText, _ := strings.Cut(head, " ")
	props = map[string]string{}
	if propText != "" {
		for _, kv := range strings.Split(propText, ",") {
			k, v, found := strings.Cut(kv, "=")
			if !found {
				return "", nil, "", false
			}
			props[k] = unescapeGitHub(v, true)
		}
	}
	return name, props, unescapeGitHub(data, false), true
}

func unescapeGitHub(s string, property bool) string {
	pairs := []string{"%0D", "\r", "%0A", "\n"}
	if property {
		pairs = append(pairs, "%3A", ":", "%2C", ",")
	}
	return strings.NewReplacer(append(pairs, "%25", "%")...).Replace(s)
}

// TestGitHubAnnotationEscaping: hostile paths and messages cannot end an
// annotation early, start another command or change a property; what the
// runner reads back is the problem as validate prints it.
func TestGitHubAnnotationEscaping(t *testing.T) {
	cases := []reconciler.Problem{
		{Path: "tasks.d/acme/a,line=1,col=1::x.yaml", Line: 3, Column: 5, Tenant: "acme", Code: "c", Message: "spec: bad\n::error file=evil.yaml::forged"},
		{Path: "tasks.d/acme/100%25.yaml", Line: 1, Column: 1, Message: "50% done %0A not a newline, %2C not a comma"},
		{Path: "tasks.d/acme/cr\r\nlf.yaml", Line: 2, Message: "line\r\n::warning::x", Severity: reconciler.SeverityWarning},
		{Path: "tasks.d/x:y=z.yaml", Message: "no line: a,b::c"},
	}
	for _, p := range cases {
		line := p.GitHubAnnotation(false)
		if strings.ContainsAny(line, "\r\n") {
			t.Errorf("annotation spans lines: %q", line)
		}
		name, props, data, ok := parseGitHubCommand(line)
		if !ok {
			t.Fatalf("not a workflow command: %q", line)
		}
		want := p.Escaped()
		wantName := "error"
		if p.IsWarning() {
			wantName = "warning"
		}
		if name != wantName {
			t.Errorf("%q: command %q, want %q", line, name, wantName)
		}
		if props["file"] != want.Path {
			t.Errorf("%q: file read back as %q, want %q", line, props["file"], want.Path)
		}
		if data != want.Message {
			t.Errorf("%q: message read back as %q, want %q", line, data, want.Message)
		}
		for k := range props {
			switch k {
			case "file", "line", "col", "title":
			default:
				t.Errorf("%q: a property %q was injected", line, k)
			}
		}
		if p.Line == 0 && props["line"] != "" {
			t.Errorf("%q: line without a line", line)
		}
	}
	// The exact form, as GitHub documents it.
	got := reconciler.Problem{Path: "t/acme/a,b:c%.yaml", Line: 7, Column: 3, Tenant: "acme", Code: "x", Message: "100% sure\nnext"}.GitHubAnnotation(false)
	want := "::error file=t/acme/a%2Cb%3Ac%25.yaml,line=7,col=3,title=tasksync%3A acme/x::100%25 sure\\nnext"
	if got != want {
		t.Errorf("GitHubAnnotation =\n%s\nwant\n%s", got, want)
	}
}

// TestValidateFormatGitHub runs validate --format github on a tree whose
// file names are hostile and checks every annotation it prints.
func TestValidateFormatGitHub(t *testing.T) {
	tree := t.TempDir()
	dir := filepath.Join(tree, "acme")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"a,b:c%0A.yaml":       "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: a}\nspec:\n  trigger: {cron: \"0 25 * * *\"}\n  type: api_call\n  config: {url: \"https://example.com/\"}\n",
		"line\nbreak.yaml":    "apiVersion: tasksync/v1\nkind: Nope\n",
		"past.yaml":           "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: p}\nspec:\n  trigger: {at: \"2001-01-01T00:00:00Z\"}\n  type: api_call\n  config: {url: \"https://example.com/\"}\n",
		"::error x=y::z.yaml": "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: q}\nspec: {}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(tree)
	out, errOut, code := runCmd(t, nil, "validate", "--format", "github", "--dir", ".", ".")
	if code != cli.ExitFailure {
		t.Fatalf("exit %d, want 1: %s%s", code, out, errOut)
	}
	text, _, _ := runCmd(t, nil, "validate", "--dir", ".", ".")
	textLines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != len(textLines) {
		t.Fatalf("github output has %d lines, text %d:\n%s\n---\n%s", len(lines), len(textLines), out, text)
	}
	errorsSeen, warningsSeen := 0, 0
	for i, l := range lines[:len(lines)-1] {
		name, props, data, ok := parseGitHubCommand(l)
		if !ok {
			t.Fatalf("line %d is not an annotation: %q", i, l)
		}
		switch name {
		case "error":
			errorsSeen++
		case "warning":
			warningsSeen++
			data = "warning: " + data
		default:
			t.Errorf("command %q", name)
		}
		// The text line says the same: path:line:col: message.
		loc := props["file"]
		if props["line"] != "" {
			loc += ":" + props["line"]
		}
		if props["col"] != "" {
			loc += ":" + props["col"]
		}
		if loc+": "+data != textLines[i] {
			t.Errorf("annotation %q reads back as %q, text says %q", l, loc+": "+data, textLines[i])
		}
	}
	if errorsSeen < 3 || warningsSeen != 1 {
		t.Errorf("%d errors and %d warnings:\n%s", errorsSeen, warningsSeen, out)
	}
	if last := lines[len(lines)-1]; strings.HasPrefix(last, "::") || last != textLines[len(textLines)-1] {
		t.Errorf("last line %q, want the summary %q", last, textLines[len(textLines)-1])
	}
}

// TestValidateFormatGitHubStrict: under --strict a warning fails the job,
// so its annotation is an error (still saying it is a warning), not a
// warning that the job's failure would contradict.
func TestValidateFormatGitHubStrict(t *testing.T) {
	tree := t.TempDir()
	dir := filepath.Join(tree, "acme")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	past := "apiVersion: tasksync/v1\nkind: ScheduledTask\nmetadata: {code: p}\nspec:\n  trigger: {at: \"2001-01-01T00:00:00Z\"}\n  type: api_call\n  config: {url: \"https://example.com/\"}\n"
	if err := os.WriteFile(filepath.Join(dir, "past.yaml"), []byte(past), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(tree)
	for _, strict := range []bool{false, true} {
		args := []string{"validate", "--format", "github", "--dir", ".", "."}
		wantCode, wantLevel := 0, "warning"
		if strict {
			args = append([]string{"validate", "--strict"}, args[1:]...)
			wantCode, wantLevel = cli.ExitFailure, "error"
		}
		out, errOut, code := runCmd(t, nil, args...)
		if code != wantCode {
			t.Errorf("strict %v: exit %d, want %d: %s%s", strict, code, wantCode, out, errOut)
		}
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("strict %v: %d lines, want an annotation and the summary:\n%s", strict, len(lines), out)
		}
		name, _, data, ok := parseGitHubCommand(lines[0])
		if !ok || name != wantLevel {
			t.Errorf("strict %v: %q, want a ::%s annotation", strict, lines[0], wantLevel)
		}
		if strict && !strings.HasPrefix(data, "warning: ") {
			t.Errorf("strict: %q does not say it is a warning", data)
		}
	}
}
