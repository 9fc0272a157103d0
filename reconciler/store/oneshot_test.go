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
	_, p := gooseDB(t, url)
	if _, err := p.DownTo(ctxT(t), 5); err != nil {
		t.Fatalf("down to 5: %v", err)
	}
	ref, _, err := s.Current(ctxT(t), "acme", "once")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartRun(ctxT(t), ref, reconciler.RunInput{RunID: "01BEFORE"}, time.Now().Add(time.Minute)); err != nil {
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
