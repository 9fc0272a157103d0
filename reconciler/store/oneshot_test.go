package store_test

import (
	"fmt"
	"testing"
	"testing/fstest"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/definitions/deftest"
	"github.com/riveredge/tasksync/reconciler/store"
)

// oneShotTree is a tenant with a one-shot an hour ahead.
func oneShotTree(at time.Time) fstest.MapFS {
	return fstest.MapFS{"acme/once.yaml": file(deftest.Task{Code: "once", Trigger: fmt.Sprintf("{at: %q}", at.UTC().Format(time.RFC3339))}.String())}
}

// TestOneShotFiredMark: every recorded run of a one-shot's version marks
// it fired, once (the first run); the mark outlives the run rows, and a
// new version starts unmarked.
func TestOneShotFiredMark(t *testing.T) {
	s, url := pg.NewStore(t, store.Options{})
	at := time.Now().Add(time.Hour)
	reconcile(t, s, oneShotTree(at), "")
	state := func() reconciler.OneShotStatus {
		t.Helper()
		d, err := s.Definition(ctxT(t), "acme", "once")
		if err != nil || d.OneShot == nil {
			t.Fatalf("Definition = %+v, %v", d, err)
		}
		return *d.OneShot
	}
	if got := state(); got.State != reconciler.OneShotScheduled {
		t.Fatalf("before any run: %+v, want scheduled", got)
	}
	ref, _, err := s.Current(ctxT(t), "acme", "once")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"01FIRST", "01SECOND"} {
		if _, err := s.StartRun(ctxT(t), ref, reconciler.RunInput{RunID: id}, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if got := state(); got.State != reconciler.OneShotFired || got.RunID != "01FIRST" || got.FiredAt == nil {
		t.Errorf("after two runs: %+v, want fired by 01FIRST", got)
	}
	// Run retention deletes rows; the mark stays.
	conn, _ := gooseDB(t, url)
	if _, err := conn.ExecContext(ctxT(t), `delete from root_task_runs`); err != nil {
		t.Fatal(err)
	}
	if got := state(); got.State != reconciler.OneShotFired || got.RunID != "01FIRST" {
		t.Errorf("after the runs were deleted: %+v, want still fired by 01FIRST", got)
	}
	// A new version (another time, still ahead) has not fired.
	reconcile(t, s, oneShotTree(at.Add(time.Hour)), "")
	if got := state(); got.State != reconciler.OneShotScheduled || got.FiredAt != nil || got.RunID != "" {
		t.Errorf("a new version: %+v, want scheduled, not fired", got)
	}
}

// TestMigrateMarksFiredOneShots: a database written before migration
// 00006 has one-shots that ran; the migration marks them fired from their
// runs.
func TestMigrateMarksFiredOneShots(t *testing.T) {
	s, url := pg.NewStore(t, store.Options{})
	reconcile(t, s, oneShotTree(time.Now().Add(time.Hour)), "")
	conn, p := gooseAt(t, url, 5)
	// The run as the code of that time recorded it (today's statements
	// need the later migrations).
	if _, err := conn.ExecContext(ctxT(t), `
		insert into root_task_runs (tenant_id, task_id, revision, inngest_run_id, attempt, status)
		select tenant_id, id, revision, '01BEFORE', 0, 'running' from root_scheduled_tasks where code = 'once'`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctxT(t)); err != nil {
		t.Fatalf("up: %v", err)
	}
	d, err := s.Definition(ctxT(t), "acme", "once")
	if err != nil || d.OneShot == nil || d.OneShot.State != reconciler.OneShotFired || d.OneShot.RunID != "01BEFORE" {
		t.Errorf("after the migration: %+v, %v; want fired by 01BEFORE", d.OneShot, err)
	}
}

// TestManualRunRecords: a manual run's attempts are marked (the status
// API's "trigger": "manual"); a one-shot's manual run neither marks it
// fired nor counts as its run (RanBefore), and a scheduled run's record
// carries no mark. Retired tells a retired code from an unknown one.
func TestManualRunRecords(t *testing.T) {
	s, _ := pg.NewStore(t, store.Options{})
	reconcile(t, s, oneShotTree(time.Now().Add(time.Hour)), "")
	ref, _, err := s.Current(ctxT(t), "acme", "once")
	if err != nil {
		t.Fatal(err)
	}
	manual := reconciler.RunInput{RunID: "01MANUAL", Event: map[string]any{"name": reconciler.ManualRunEvent}}
	if _, err := s.StartRun(ctxT(t), ref, manual, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ran, err := s.RanBefore(ctxT(t), ref, "01OWN"); err != nil || ran {
		t.Errorf("RanBefore after a manual run = %v, %v; want false", ran, err)
	}
	if d, err := s.Definition(ctxT(t), "acme", "once"); err != nil || d.OneShot == nil || d.OneShot.State != reconciler.OneShotScheduled {
		t.Errorf("the one-shot after a manual run: %+v, %v; want scheduled, not fired", d.OneShot, err)
	}
	if _, err := s.StartRun(ctxT(t), ref, reconciler.RunInput{RunID: "01OWN"}, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs(ctxT(t), "acme", "once", 10, 0)
	if err != nil || len(runs) != 2 {
		t.Fatalf("Runs = %v, %v", runs, err)
	}
	if runs[0].Trigger != "" || runs[1].Trigger != reconciler.RunTriggerManual {
		t.Errorf("triggers = %q, %q; want the own run unmarked, the manual one %q", runs[0].Trigger, runs[1].Trigger, reconciler.RunTriggerManual)
	}
	if d, err := s.Definition(ctxT(t), "acme", "once"); err != nil || d.OneShot == nil || d.OneShot.RunID != "01OWN" {
		t.Errorf("the one-shot after its own run: %+v, %v; want fired by 01OWN", d.OneShot, err)
	}
	for _, tc := range []struct {
		code string
		want bool
	}{{"once", false}, {"never", false}} {
		if got, err := s.Retired(ctxT(t), "acme", tc.code); err != nil || got != tc.want {
			t.Errorf("Retired(%s) = %v, %v; want %v", tc.code, got, err, tc.want)
		}
	}
	reconcile(t, s, fstest.MapFS{"acme/other.yaml": file(deftest.Task{Code: "other"}.String())}, "all")
	if got, err := s.Retired(ctxT(t), "acme", "once"); err != nil || !got {
		t.Errorf("Retired(once) after its file went = %v, %v; want true", got, err)
	}
}
