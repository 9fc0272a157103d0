package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

// lastRun is what a definition says of its last run, in the columns and
// in the status API's detail.
type lastRun struct {
	Status, Error string
	Running       bool
	RunStatus     reconciler.RunStatus // the detail's last_run
	RunAttempt    int
}

func readLastRun(t *testing.T, s *store.Store, code string) lastRun {
	t.Helper()
	d, err := s.Definition(ctxT(t), "acme", code)
	if err != nil {
		t.Fatal(err)
	}
	l := lastRun{Status: d.LastRunStatus, Error: d.LastError, Running: d.IsRunning}
	if d.LastRun != nil {
		l.RunStatus, l.RunAttempt = d.LastRun.Status, d.LastRun.Attempt
	}
	return l
}

// TestTaskAttemptsAgree: a task's definition says of its last run what
// its newest attempt row says, at every step: while attempt 0 runs, once
// it failed (not final: a retry follows), when the retry starts, when it
// fails for good; a retry of an attempt still running closes that one as
// abandoned.
func TestTaskAttemptsAgree(t *testing.T) {
	ctx := ctxT(t)
	s, _ := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "all")
	ref, _, err := s.Current(ctx, "acme", "alpha")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	id0, err := s.StartRun(ctx, ref, reconciler.RunInput{RunID: "r1"}, deadline)
	if err != nil {
		t.Fatal(err)
	}
	want := lastRun{Status: "running", Running: true, RunStatus: reconciler.RunRunning}
	if got := readLastRun(t, s, "alpha"); got != want {
		t.Errorf("attempt 0 running: %+v, want %+v", got, want)
	}
	if err := s.FinishRun(ctx, ref, id0, reconciler.AttemptEnd{Status: reconciler.RunFailed, Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	want = lastRun{Status: "failed", Error: "boom", RunStatus: reconciler.RunFailed}
	if got := readLastRun(t, s, "alpha"); got != want {
		t.Errorf("attempt 0 failed: %+v, want %+v", got, want)
	}
	id1, err := s.StartRun(ctx, ref, reconciler.RunInput{RunID: "r1", Attempt: 1}, deadline)
	if err != nil {
		t.Fatal(err)
	}
	want = lastRun{Status: "running", Running: true, RunStatus: reconciler.RunRunning, RunAttempt: 1}
	if got := readLastRun(t, s, "alpha"); got != want {
		t.Errorf("attempt 1 running: %+v, want %+v", got, want)
	}
	// Attempt 2 arrives while 1 still runs: 1's replica stopped.
	id2, err := s.StartRun(ctx, ref, reconciler.RunInput{RunID: "r1", Attempt: 2}, deadline)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, ref, id2, reconciler.AttemptEnd{Status: reconciler.RunFailed, Error: "boom again", Final: true}); err != nil {
		t.Fatal(err)
	}
	want = lastRun{Status: "failed", Error: "boom again", RunStatus: reconciler.RunFailed, RunAttempt: 2}
	if got := readLastRun(t, s, "alpha"); got != want {
		t.Errorf("attempt 2 failed for good: %+v, want %+v", got, want)
	}
	runs, err := s.Runs(ctx, "acme", "alpha", 10, 0)
	if err != nil || len(runs) != 3 {
		t.Fatalf("Runs = %d, %v", len(runs), err)
	}
	for _, r := range runs {
		wantFinal := r.ID == id2
		if r.Status != reconciler.RunFailed || r.FinishedAt == nil || r.DurationMS == nil || r.Final != wantFinal {
			t.Errorf("attempt %d = %s, finished %v, final %v; want failed with a finish, final %v", r.Attempt, r.Status, r.FinishedAt, r.Final, wantFinal)
		}
		if r.ID == id1 && r.Error != reconciler.ErrAbandoned.Error() {
			t.Errorf("attempt 1's error = %q, want %q", r.Error, reconciler.ErrAbandoned)
		}
	}
}

// TestCloseAbandoned: an attempt still running after its deadline plus
// the grace is closed as failed, final and abandoned, and its definition
// no longer runs; one within its deadline is left alone.
func TestCloseAbandoned(t *testing.T) {
	ctx := ctxT(t)
	s, _ := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "all")
	alpha, _, _ := s.Current(ctx, "acme", "alpha")
	beta, _, _ := s.Current(ctx, "acme", "beta")
	if _, err := s.StartRun(ctx, alpha, reconciler.RunInput{RunID: "dead"}, time.Now().Add(-2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartRun(ctx, beta, reconciler.RunInput{RunID: "alive"}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	closed, err := s.CloseAbandoned(ctx, time.Second, 100)
	if want := []reconciler.AbandonedRun{{Tenant: "acme", Kind: reconciler.KindScheduledTask, Attempts: 1}}; err != nil || !slices.Equal(closed, want) {
		t.Fatalf("CloseAbandoned = %+v, %v; want %+v", closed, err, want)
	}
	want := lastRun{Status: "failed", Error: reconciler.ErrAbandoned.Error(), RunStatus: reconciler.RunFailed}
	if got := readLastRun(t, s, "alpha"); got != want {
		t.Errorf("alpha after the sweep: %+v, want %+v", got, want)
	}
	if got := readLastRun(t, s, "beta"); !got.Running || got.RunStatus != reconciler.RunRunning {
		t.Errorf("beta, within its deadline, after the sweep: %+v, want running", got)
	}
	runs, _ := s.Runs(ctx, "acme", "alpha", 1, 0)
	if len(runs) != 1 || !runs[0].Final {
		t.Errorf("the closed attempt = %+v, want final", runs)
	}
}

// TestPruneRuns: runs older than the retention go in batches of at most
// the batch size; recent runs, running ones and each definition's newest
// row stay, and the definitions' last runs are unchanged.
func TestPruneRuns(t *testing.T) {
	ctx := ctxT(t)
	s, url := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "all")
	alpha, _, _ := s.Current(ctx, "acme", "alpha")
	beta, _, _ := s.Current(ctx, "acme", "beta")
	conn := storetest.Conn(t, url)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	// alpha: 2,500 runs 40 days old, one old run still marked running,
	// then 3 recent ones; beta: 2 old runs only.
	exec(`insert into root_task_runs (tenant_id, task_id, revision, inngest_run_id, attempt, status, started_at, finished_at, final)
		select d.tenant_id, d.id, 1, 'old-' || g, 0, 'succeeded', now() - interval '40 days' + g * interval '1 second', now() - interval '40 days', true
		from root_scheduled_tasks d, generate_series(1, 2500) g where d.id = $1`, alpha.ID)
	exec(`insert into root_task_runs (tenant_id, task_id, revision, inngest_run_id, attempt, status, started_at)
		select tenant_id, id, 1, 'old-running', 0, 'running', now() - interval '40 days' from root_scheduled_tasks where id = $1`, alpha.ID)
	for i := range 3 {
		id, err := s.StartRun(ctx, alpha, reconciler.RunInput{RunID: "recent-" + string(rune('a'+i))}, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishRun(ctx, alpha, id, reconciler.AttemptEnd{Status: reconciler.RunSucceeded, Final: true}); err != nil {
			t.Fatal(err)
		}
	}
	exec(`insert into root_task_runs (tenant_id, task_id, revision, inngest_run_id, attempt, status, started_at, finished_at, final, error)
		select tenant_id, id, 1, 'beta-' || g, 0, 'failed', now() - interval '50 days' + g * interval '1 hour', now() - interval '50 days', true, 'beta ' || g
		from root_scheduled_tasks, generate_series(1, 2) g where id = $1`, beta.ID)
	alphaBefore, betaBefore := readLastRun(t, s, "alpha"), readLastRun(t, s, "beta")

	before := time.Now().Add(-30 * 24 * time.Hour)
	total, calls := 0, 0
	var err error
	for more := true; more; calls++ {
		if calls > 10 {
			t.Fatal("PruneRuns never finished")
		}
		var n int
		n, more, err = s.PruneRuns(ctx, before, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if n > 1000 {
			t.Fatalf("PruneRuns deleted %d rows in one statement, want at most 1000", n)
		}
		total += n
	}
	if total != 2500+1 {
		t.Errorf("pruned %d rows, want 2501 (alpha's old ended runs and beta's older one)", total)
	}
	var left []string
	rows, _ := conn.Query(ctx, `select inngest_run_id from root_task_runs order by inngest_run_id`)
	left, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"beta-2", "old-running", "recent-a", "recent-b", "recent-c"}; !equal(left, want) {
		t.Errorf("rows left = %v, want %v", left, want)
	}
	if got := readLastRun(t, s, "alpha"); got != alphaBefore {
		t.Errorf("alpha's last run after pruning = %+v, want %+v", got, alphaBefore)
	}
	if got := readLastRun(t, s, "beta"); got != betaBefore || got.RunStatus != reconciler.RunFailed {
		t.Errorf("beta's last run after pruning = %+v, want %+v (failed)", got, betaBefore)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMigrationMakesOutputsJSON: rows written before outputs were JSON
// values read back as values after migration 00005: an output that is
// JSON text becomes that value, one that is not (cut at its cap) a JSON
// string, a step's string of JSON its value; the last ended attempt of a
// run is final, and a failed workflow attempt names its failed step.
func TestMigrationMakesOutputsJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := pg.NewDatabase(t)
	db, _ := gooseAt(t, url, 4)
	for _, q := range []string{
		`insert into root_tenants (code) values ('acme')`,
		`insert into root_scheduled_tasks (tenant_id, code, type, trigger_type, trigger_config, task_config, is_active, kind, spec_hash, spec, source_path, source_line, last_run_status)
			values (1, 'alpha', 'api_call', 'event', '{}', '{}', true, 'ScheduledTask', 'h', '{}', 'a.yaml', 1, 'succeeded')`,
		`insert into root_task_runs (tenant_id, task_id, revision, inngest_run_id, attempt, status, output) values
			(1, 1, 1, 'r1', 0, 'failed', null), (1, 1, 1, 'r1', 1, 'succeeded', '{"id":7,"ok":true}'), (1, 1, 1, 'r2', 0, 'succeeded', '{"cut":"abc')`,
		`insert into root_task_runs (tenant_id, task_id, revision, inngest_run_id, attempt, status, steps) values
			(1, 1, 1, 'w1', 0, 'failed', '[{"id":"a","status":"completed","output":"{\"n\":1}"},{"id":"b","status":"failed","error":"boom"}]')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := storetest.Open(t, url, store.Options{})
	runs, err := s.Runs(ctx, "acme", "alpha", 10, 0)
	if err != nil || len(runs) != 4 {
		t.Fatalf("Runs = %d, %v", len(runs), err)
	}
	got := map[string]string{}
	for _, r := range runs {
		key := fmt.Sprintf("%s/%d", r.InngestRunID, r.Attempt)
		got[key] = fmt.Sprintf("output=%s steps=%s final=%v failed_step=%s", r.Output, r.Steps, r.Final, r.FailedStep)
	}
	want := map[string]string{
		"r1/0": "output= steps= final=false failed_step=",
		"r1/1": `output={"id": 7, "ok": true} steps= final=true failed_step=`,
		"r2/0": `output="{\"cut\":\"abc" steps= final=true failed_step=`,
		"w1/0": `output= steps=[{"id": "a", "output": {"n": 1}, "status": "completed"}, {"id": "b", "error": "boom", "status": "failed"}] final=true failed_step=b`,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s after the migration: %s\nwant %s", k, got[k], w)
		}
	}
	d, err := s.Definition(ctx, "acme", "alpha")
	if err != nil || d.LastRunStatus != "failed" || d.LastRun == nil || d.LastRun.InngestRunID != "w1" {
		t.Errorf("definition after the migration: last_run_status %q, last run %+v, %v; want the newest row's (w1, failed)", d.LastRunStatus, d.LastRun, err)
	}
}

// TestRunsOfARecreatedCode: a code retired and added again is a new
// definition (another uuid); its runs list spans both, each run naming
// the definition (uuid) and revision it ran. A workflow attempt left
// running when its definition was retired is closed by StopRetiredRun as
// a final failure that says so, and the definition no longer runs.
func TestRunsOfARecreatedCode(t *testing.T) {
	ctx := ctxT(t)
	s, _ := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "")
	old, err := s.Definition(ctx, "acme", "alpha")
	if err != nil {
		t.Fatal(err)
	}
	ref, _, err := s.Current(ctx, "acme", "alpha")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordWorkflowRun(ctx, ref, reconciler.RunInput{RunID: "waiting"}, reconciler.WorkflowAttempt{Status: reconciler.RunRunning,
		Deadline: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	tree := baseTree()
	delete(tree, "acme/a.yaml")
	reconcile(t, s, tree, "")
	if err := s.StopRetiredRun(ctx, "globex", "alpha", "waiting"); err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs(ctx, "acme", "alpha", 10, 0)
	if err != nil || len(runs) != 1 || runs[0].Status != reconciler.RunRunning {
		t.Fatalf("another tenant's StopRetiredRun closed acme's run: %+v, %v", runs, err)
	}
	if err := s.StopRetiredRun(ctx, "acme", "alpha", "waiting"); err != nil {
		t.Fatal(err)
	}
	reconcile(t, s, baseTree(), "")
	recreated, err := s.Definition(ctx, "acme", "alpha")
	if err != nil {
		t.Fatal(err)
	}
	if recreated.UUID == old.UUID {
		t.Fatalf("the re-added definition kept the uuid %s", old.UUID)
	}
	ref, _, err = s.Current(ctx, "acme", "alpha")
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.StartRun(ctx, ref, reconciler.RunInput{RunID: "new"}, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, ref, id, reconciler.AttemptEnd{Status: reconciler.RunSucceeded, Final: true}); err != nil {
		t.Fatal(err)
	}
	runs, err = s.Runs(ctx, "acme", "alpha", 10, 0)
	if err != nil || len(runs) != 2 {
		t.Fatalf("Runs = %+v, %v; want the new definition's run and the old one's", runs, err)
	}
	if r := runs[0]; r.InngestRunID != "new" || r.DefinitionUUID != recreated.UUID || r.Revision != recreated.Revision {
		t.Errorf("newest run = %+v, want run new of definition %s revision %d", r, recreated.UUID, recreated.Revision)
	}
	if r := runs[1]; r.InngestRunID != "waiting" || r.DefinitionUUID != old.UUID || r.Revision != old.Revision ||
		r.Status != reconciler.RunFailed || !r.Final || r.Error != reconciler.ErrRetired.Error() || r.FinishedAt == nil {
		t.Errorf("older run = %+v, want run waiting of definition %s revision %d, failed and final with %q", r, old.UUID, old.Revision, reconciler.ErrRetired)
	}
}
