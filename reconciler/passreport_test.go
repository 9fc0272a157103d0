package reconciler_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/riveredge/tasksync/reconciler"
)

// TestPassWriteText: the report of run --once counts what was applied,
// held and kept, and says whether the apps were synced.
func TestPassWriteText(t *testing.T) {
	applied := func(c reconciler.Counts) *reconciler.Result { return &reconciler.Result{Counts: c} }
	for _, tc := range []struct {
		name   string
		pass   reconciler.Pass
		synced bool
		want   string
	}{
		{"nothing applied", reconciler.Pass{Err: errors.New("down")}, true, ""},
		{"postgres only", reconciler.Pass{Applied: applied(reconciler.Counts{Created: 7})}, false,
			"Applied: 7 created, 0 updated, 0 retired, 0 unchanged.\n"},
		{"synced", reconciler.Pass{Applied: applied(reconciler.Counts{Updated: 1, Unchanged: 6})}, true,
			"Applied: 0 created, 1 updated, 0 retired, 6 unchanged.\nInngest: every tenant's app synced and verified.\n"},
		{"held and problems", reconciler.Pass{Applied: applied(reconciler.Counts{Retired: 1, Held: 2, Errors: 1}),
			Unsynced: map[string]error{"acme": errors.New("refused")}}, true,
			"Applied: 0 created, 0 updated, 1 retired, 0 unchanged, 2 retirements held (raise the tenant's spec.maxRetire in a TenantSettings document, or --max-retire, to apply); 1 problem (last applied versions kept).\n" +
				"Inngest: 1 tenant could not be synced.\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			tc.pass.WriteText(&b, tc.synced)
			if got := b.String(); got != tc.want {
				t.Errorf("WriteText(synced %v) =\n%s\nwant\n%s", tc.synced, got, tc.want)
			}
		})
	}
}
