package executor_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/riveredge/tasksync/reconciler/executor"
)

// TestNewActions: the paths to hide from scripts are resolved through
// symlinks, an empty or missing one is left out, and a sandbox that fails
// its check is kept, its refusal logged once.
func TestNewActions(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "tree")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	resolved, err := filepath.EvalSymlinks(real)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	sb := &executor.Sandbox{Python: filepath.Join(t.TempDir(), "no-python")}
	a, err := executor.NewActions(context.Background(), executor.ActionsOptions{
		Secrets: executor.NewSecrets("", func(string) string { return "" }),
		Sandbox: sb, Hide: []string{link, "", filepath.Join(real, "missing")},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.Sandbox != sb || a.HTTP == nil {
		t.Fatalf("NewActions = %+v, want the sandbox given and an HTTP executor", a)
	}
	if !slices.Equal(sb.Mask, []string{resolved}) {
		t.Errorf("Mask = %q, want [%q]", sb.Mask, resolved)
	}
	if got := logs.String(); strings.Count(got, "python_script runs will be refused") != 1 {
		t.Errorf("log = %q, want the refusal once", got)
	}
}
