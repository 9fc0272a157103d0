package store_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/riveredge/tasksync/reconciler/store"
)

// TestPruneUsesIndexes: retention's statements find the rows that ended
// before the cut-off through an index, not by reading and sorting every
// run record and claim at every resync (a table that holds 30 days
// of runs is large, and the leader prunes it on each resync even when
// nothing is old enough). Sequential scans are disabled for the check:
// a plan that still reads the whole table has no index it can use.
func TestPruneUsesIndexes(t *testing.T) {
	ctx := ctxT(t)
	s, url := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "all")
	alpha, _, _ := s.Current(ctx, "acme", "alpha")
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{
		`insert into root_task_runs (tenant_id, task_id, revision, inngest_run_id, attempt, status, started_at, finished_at, final)
			select tenant_id, id, 1, 'run-' || g, 0, 'succeeded', now() - g * interval '1 minute', now() - g * interval '1 minute', true
			from root_scheduled_tasks, generate_series(1, 5000) g where id = $1`,
		`insert into root_fire_claims (task_id, scheduled_for, inngest_run_id, claimed_at)
			select $1, now() - g * interval '1 minute', 'run-' || g, now() - g * interval '1 minute' from generate_series(1, 5000) g`,
		`insert into root_manual_claims (nonce, inngest_run_id, claimed_at)
			select $1::bigint || '-' || g, 'run-' || g, now() - g * interval '1 minute' from generate_series(1, 5000) g`,
	} {
		if _, err := conn.Exec(ctx, sql, alpha.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `analyze root_task_runs; analyze root_fire_claims; analyze root_manual_claims; set enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-30 * 24 * time.Hour)
	for name, tc := range map[string]struct{ sql, table string }{
		"runs":   {store.PruneRunsSQL, "root_task_runs"},
		"claims": {store.PruneClaimsSQL, "root_fire_claims"},
		"manual": {store.PruneManualClaimsSQL, "root_manual_claims"},
	} {
		var plan []map[string]any
		if err := conn.QueryRow(ctx, "explain (format json) "+tc.sql, before, 1000).Scan(&plan); err != nil {
			t.Fatalf("%s: explain: %v", name, err)
		}
		raw, _ := json.Marshal(plan)
		if scans := seqScans(plan[0]["Plan"], tc.table); len(scans) > 0 {
			t.Errorf("%s: the prune reads all of %s (%v) to find what ended before the cut-off; plan: %s", name, tc.table, scans, raw)
		}
	}
}

// seqScans returns the sequential scans of table in a JSON plan node
// and its children.
func seqScans(node any, table string) []string {
	n, ok := node.(map[string]any)
	if !ok {
		return nil
	}
	var found []string
	if n["Node Type"] == "Seq Scan" && n["Relation Name"] == table {
		found = append(found, strings.TrimSpace(table+" "+stringOf(n["Filter"])))
	}
	children, _ := n["Plans"].([]any)
	for _, c := range children {
		found = append(found, seqScans(c, table)...)
	}
	return found
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}
