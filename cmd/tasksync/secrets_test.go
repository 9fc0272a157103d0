package main

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
)

// TestWarnUngranted: files left at the top of the secrets directory (the
// old global layout) are named once, their values never shown; tenant
// directories, _shared and a volume's hidden entries are not named.
func TestWarnUngranted(t *testing.T) {
	dir := t.TempDir()
	deftest.WriteFile(t, filepath.Join(dir, "GLOBEX_TOKEN"), "globex-value-never-logged")
	deftest.WriteFile(t, filepath.Join(dir, "acme", "TOKEN"), "acme-value")
	deftest.WriteFile(t, filepath.Join(dir, "_shared", "MAPS"), "maps-value")
	deftest.WriteFile(t, filepath.Join(dir, "..data"), "hidden")
	var logs bytes.Buffer
	warnUngranted(slog.New(slog.NewTextHandler(&logs, nil)), dir)
	got := logs.String()
	if strings.Count(got, "\n") != 1 || !strings.Contains(got, "files=[GLOBEX_TOKEN]") || !strings.Contains(got, "<dir>/<tenant>/NAME") {
		t.Errorf("warning = %q, want one line naming GLOBEX_TOKEN and where to move it", got)
	}
	if strings.Contains(got, "value") {
		t.Errorf("the warning shows a secret's value: %s", got)
	}
	logs.Reset()
	warnUngranted(slog.New(slog.NewTextHandler(&logs, nil)), "")
	if logs.Len() > 0 {
		t.Errorf("without a secrets directory: %s", logs.String())
	}
}
