package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/riveredge/tasksync/reconciler/executor"
)

// TestPlaceholderSecrets: every secret the sample tree names is granted
// to its tenant in the directory make run gives tasksync.
func TestPlaceholderSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	if err := placeholderSecrets("../../tasks.d", dir); err != nil {
		t.Fatal(err)
	}
	s := executor.NewSecrets(dir, func(string) string { return "" })
	want := map[string][]string{
		"acme":   {"ACME_MAIL_TOKEN", "ACME_REPORTS_TOKEN", "ACME_DASHBOARD_KEY"},
		"globex": {"GLOBEX_CRM_TOKEN"},
	}
	for tenant, names := range want {
		for _, name := range names {
			if err := s.Check(tenant, name); err != nil {
				t.Errorf("Check(%s, %s) = %v", tenant, name, err)
			}
		}
	}
	// A second start keeps what is there.
	p := filepath.Join(dir, "acme", "ACME_MAIL_TOKEN")
	if err := os.WriteFile(p, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := placeholderSecrets("../../tasks.d", dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "mine" {
		t.Errorf("placeholderSecrets overwrote %s: %q", p, b)
	}
}
