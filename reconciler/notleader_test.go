package reconciler_test

import (
	"strings"
	"testing"

	"github.com/riveredge/tasksync/reconciler"
)

// TestNotLeaderError: the refusal of run --once while a daemon leads
// suggests raising spec.maxRetire only when retirements are held, naming
// the tenants that hold them.
func TestNotLeaderError(t *testing.T) {
	if msg := reconciler.NotLeaderError(nil).Error(); strings.Contains(msg, "maxRetire") || !strings.Contains(msg, "stop the daemon") {
		t.Errorf("nothing held: %q, want no spec.maxRetire and what to do", msg)
	}
	statuses := []reconciler.TenantStatus{{Tenant: "acme", HeldRetires: []string{"a"}}, {Tenant: "initech"}, {Tenant: "globex", HeldRetires: []string{"g"}}}
	msg := reconciler.NotLeaderError(reconciler.HeldTenants(statuses)).Error()
	if !strings.Contains(msg, "spec.maxRetire") || !strings.Contains(msg, `"acme", "globex"`) || strings.Contains(msg, "initech") {
		t.Errorf("retirements held: %q, want spec.maxRetire and the tenants that hold them", msg)
	}
}
