package store_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

// TestPruneRunsByTheirEnd: retention counts from when a run ended: a long
// workflow that started 40 days ago and ended an hour ago is kept; one
// that ended 31 days ago goes.
func TestPruneRunsByTheirEnd(t *testing.T) {
	ctx := ctxT(t)
	s, url := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "all")
	alpha, _, _ := s.Current(ctx, "acme", "alpha")
	conn := storetest.Conn(t, url)
	if _, err := conn.Exec(ctx, `insert into root_task_runs (tenant_id, task_id, revision, inngest_run_id, attempt, status, started_at, finished_at, final)
		select tenant_id, id, 1, v.run, 0, 'succeeded', now() - interval '40 days', now() - v.ago, true
		from root_scheduled_tasks, (values ('ended-long-ago', interval '31 days'), ('just-ended', interval '1 hour'), ('newest', interval '1 minute')) v(run, ago)
		where id = $1`, alpha.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PruneRuns(ctx, time.Now().Add(-30*24*time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	rows, _ := conn.Query(ctx, `select inngest_run_id from root_task_runs where task_id = $1 order by inngest_run_id`, alpha.ID)
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(left) != 2 || left[0] != "just-ended" || left[1] != "newest" {
		t.Errorf("left %v, %v; want just-ended and newest", left, err)
	}
}
