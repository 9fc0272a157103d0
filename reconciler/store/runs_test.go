package store_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/store"
	"github.com/riveredge/tasksync/reconciler/store/storetest"
)

// TestOutageErrorsAndSpooledRecords: with the database cut off, the run
// path's calls fail with ErrStoreUnavailable (not "not found"); once it is
// back, spooled records (a start, then its outcome; an outcome whose start
// was written before the outage) land in root_task_runs with their times,
// and the definition's last run follows the newest outcome.
func TestOutageErrorsAndSpooledRecords(t *testing.T) {
	ctx := ctxT(t)
	s, url := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "all")
	ref, ok, err := s.Current(ctx, "acme", "alpha")
	if err != nil || !ok {
		t.Fatalf("Current = %v %v", ok, err)
	}
	if ref.Tenant != "acme" || ref.Code != "alpha" {
		t.Errorf("Current ref = %+v, want tenant and code set", ref)
	}
	if _, ok, err := s.Current(ctx, "acme", "nope"); err != nil || ok {
		t.Errorf("Current(nope) = %v %v, want not found without an error", ok, err)
	}
	before, err := s.StartRun(ctx, ref, reconciler.RunInput{RunID: "before", Attempt: 0}, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}

	restore := pg.CutOff(t, url)
	calls := map[string]error{}
	_, _, calls["Current"] = s.Current(ctx, "acme", "alpha")
	_, _, calls["AppliedDefinition"] = s.AppliedDefinition(ctx, "acme", "alpha")
	_, calls["RanBefore"] = s.RanBefore(ctx, ref, "x")
	_, calls["StartRun"] = s.StartRun(ctx, ref, reconciler.RunInput{RunID: "x"}, time.Now())
	calls["FinishRun"] = s.FinishRun(ctx, ref, before, reconciler.AttemptEnd{Status: reconciler.RunSucceeded, Took: time.Second})
	_, calls["RecordWorkflowRun"] = s.RecordWorkflowRun(ctx, ref, reconciler.RunInput{RunID: "x"}, reconciler.WorkflowAttempt{Status: reconciler.RunSucceeded})
	calls["WriteSpooledRun"] = s.WriteSpooledRun(ctx, reconciler.SpooledRun{Ref: ref, RunID: "x", Status: reconciler.RunRunning, StartedAt: time.Now()})
	for name, err := range calls {
		if !errors.Is(err, reconciler.ErrStoreUnavailable) {
			t.Errorf("%s during the outage = %v, want ErrStoreUnavailable", name, err)
		}
	}
	restore()

	served := reconciler.AppliedRef{Tenant: "acme", Code: "alpha", Hash: ref.Hash} // no id: made during the outage
	t0 := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	for _, rec := range []reconciler.SpooledRun{
		{Ref: served, RunID: "during", Status: reconciler.RunRunning, StartedAt: t0},
		{Ref: ref, RunID: "before", Status: reconciler.RunFailed, StartedAt: t0, FinishedAt: t0.Add(time.Second), Error: "boom"},
		{Ref: served, RunID: "during", Status: reconciler.RunSucceeded, StartedAt: t0, FinishedAt: t0.Add(2 * time.Second), Output: json.RawMessage(`{"ok":true}`)},
	} {
		if err := s.WriteSpooledRun(ctx, rec); err != nil {
			t.Fatalf("WriteSpooledRun(%s %s) = %v", rec.RunID, rec.Status, err)
		}
	}
	conn := storetest.Conn(t, url)
	var status, output string
	var started, finished time.Time
	var revision, duration int64
	if err := conn.QueryRow(ctx, `select status, started_at, finished_at, revision, duration_ms, coalesce(output::text, '') from root_task_runs where inngest_run_id = 'during'`).
		Scan(&status, &started, &finished, &revision, &duration, &output); err != nil {
		t.Fatal(err)
	}
	if status != "succeeded" || !started.Equal(t0) || !finished.Equal(t0.Add(2*time.Second)) || revision != ref.Revision || duration != 2000 || output != `{"ok": true}` {
		t.Errorf("spooled run = %s %v %v rev %d %dms %q, want succeeded from %v to +2s, rev %d, 2000ms", status, started, finished, revision, duration, output, t0, ref.Revision)
	}
	if err := conn.QueryRow(ctx, `select status from root_task_runs where inngest_run_id = 'before'`).Scan(&status); err != nil || status != "failed" {
		t.Errorf("the outcome of the run started before the outage = %q, %v; want failed", status, err)
	}
	var lastStatus string
	var running bool
	if err := conn.QueryRow(ctx, `select last_run_status, is_running from root_scheduled_tasks where id = $1`, ref.ID).Scan(&lastStatus, &running); err != nil {
		t.Fatal(err)
	}
	if lastStatus != "succeeded" || running {
		t.Errorf("definition: last_run_status %q, is_running %v; want the newest outcome (succeeded), not running", lastStatus, running)
	}

	// A record whose definition cannot be found is refused, not retried as an outage.
	err = s.WriteSpooledRun(ctx, reconciler.SpooledRun{Ref: reconciler.AppliedRef{Tenant: "acme", Code: "ghost"}, RunID: "g", Status: reconciler.RunRunning, StartedAt: t0})
	if err == nil || errors.Is(err, reconciler.ErrStoreUnavailable) {
		t.Errorf("WriteSpooledRun(unknown definition) = %v, want a refusal that is not an outage", err)
	}
}
