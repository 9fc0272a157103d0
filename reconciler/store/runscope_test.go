package store_test

import (
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/store"
)

// TestRunRecordsScopedToTheirDefinition: another tenant's definition
// recording attempts under a run id of acme's (a forged call in dev mode)
// neither overwrites, closes nor un-finals acme's rows, by StartRun,
// RecordWorkflowRun or a spooled record; its own rows are its own.
func TestRunRecordsScopedToTheirDefinition(t *testing.T) {
	ctx := ctxT(t)
	s, _ := pg.NewStore(t, store.Options{})
	reconcile(t, s, baseTree(), "all")
	alpha, _, _ := s.Current(ctx, "acme", "alpha")
	xray, _, _ := s.Current(ctx, "globex", "xray")
	id, err := s.StartRun(ctx, alpha, reconciler.RunInput{RunID: "r1"}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, alpha, id, reconciler.AttemptEnd{Status: reconciler.RunSucceeded, Took: time.Second, Final: true}); err != nil {
		t.Fatal(err)
	}
	want := func(when string) {
		t.Helper()
		runs, err := s.Runs(ctx, "acme", "alpha", 10, 0)
		if err != nil || len(runs) != 1 || runs[0].Status != reconciler.RunSucceeded || !runs[0].Final || runs[0].Attempt != 0 {
			t.Fatalf("%s: alpha's runs = %+v, %v; want its one attempt, succeeded and final", when, runs, err)
		}
		if got := readLastRun(t, s, "alpha"); got.Status != "succeeded" || got.Running {
			t.Fatalf("%s: alpha's last run = %+v, want succeeded", when, got)
		}
	}
	_, _ = s.StartRun(ctx, xray, reconciler.RunInput{RunID: "r1"}, time.Now().Add(time.Hour))
	want("globex starts r1's attempt 0")
	if _, err := s.StartRun(ctx, xray, reconciler.RunInput{RunID: "r1", Attempt: 1}, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("globex's own attempt 1 of its r1: %v", err)
	}
	want("globex starts r1's attempt 1")
	_, _ = s.RecordWorkflowRun(ctx, xray, reconciler.RunInput{RunID: "r1"}, reconciler.WorkflowAttempt{Status: reconciler.RunFailed, Error: "forged", Final: true})
	want("globex records a workflow invocation of r1")
	_ = s.WriteSpooledRun(ctx, reconciler.SpooledRun{Ref: xray, RunID: "r1", Attempt: 2, Status: reconciler.RunFailed, StartedAt: time.Now(), FinishedAt: time.Now(), Error: "forged"})
	want("globex's spooled record of r1")
	// acme's own next attempt still records.
	if _, err := s.StartRun(ctx, alpha, reconciler.RunInput{RunID: "r1", Attempt: 1}, time.Now().Add(time.Hour)); err != nil {
		t.Errorf("acme's attempt 1 of r1 after globex took that number: %v", err)
	}
}
