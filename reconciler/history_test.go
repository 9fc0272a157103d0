package reconciler

import (
	"context"
	"testing"
	"time"
)

// fakeHistory deletes from a pile of old rows, batch by batch.
type fakeHistory struct {
	old, calls, closeCalls int
	grace                  time.Duration
	abandoned              []AbandonedRun
}

func (f *fakeHistory) CloseAbandoned(_ context.Context, grace time.Duration, _ int) ([]AbandonedRun, error) {
	f.closeCalls++
	f.grace = grace
	return f.abandoned, nil
}

// countingApps counts the abandoned runs the controller reports.
type countingApps struct {
	Apps
	counted []AbandonedRun
}

func (a *countingApps) CountAbandoned(runs []AbandonedRun) { a.counted = append(a.counted, runs...) }

// TestAbandonedRunsAreCounted: the runs a sweep closes go to the run
// metrics' counter, with their tenant and kind.
func TestAbandonedRunsAreCounted(t *testing.T) {
	closed := []AbandonedRun{{Tenant: "acme", Kind: KindWorkflow, Attempts: 1}, {Tenant: "beta", Kind: KindScheduledTask, Attempts: 2}}
	apps := &countingApps{}
	NewController(ControllerOptions{Runs: &fakeHistory{abandoned: closed}, Apps: apps}).tendRuns(context.Background())
	if len(apps.counted) != 2 || apps.counted[0] != closed[0] || apps.counted[1] != closed[1] {
		t.Errorf("counted %+v, want %+v", apps.counted, closed)
	}
}

func (f *fakeHistory) PruneRuns(_ context.Context, _ time.Time, batch int) (int, bool, error) {
	f.calls++
	n := min(batch, f.old)
	f.old -= n
	return n, n == batch, nil
}

// TestTendRunsIsBounded: a pass deletes at most pruneBatches batches of
// pruneBatch rows; the next pass goes on; retention 0 deletes nothing;
// abandoned attempts are closed with the default grace.
func TestTendRunsIsBounded(t *testing.T) {
	h := &fakeHistory{old: pruneBatch*pruneBatches + 10}
	c := NewController(ControllerOptions{Runs: h, RunRetention: time.Hour})
	c.tendRuns(context.Background())
	if h.calls != pruneBatches || h.old != 10 {
		t.Errorf("first pass: %d statements, %d rows left; want %d statements, 10 left", h.calls, h.old, pruneBatches)
	}
	c.tendRuns(context.Background())
	if h.old != 0 || h.calls != pruneBatches+1 {
		t.Errorf("second pass: %d statements in all, %d rows left; want %d, 0", h.calls, h.old, pruneBatches+1)
	}
	if h.closeCalls != 2 || h.grace != DefaultAbandonGrace {
		t.Errorf("abandoned sweeps: %d with grace %v, want 2 with %v", h.closeCalls, h.grace, DefaultAbandonGrace)
	}
	keep := &fakeHistory{old: 5}
	NewController(ControllerOptions{Runs: keep}).tendRuns(context.Background())
	if keep.calls != 0 {
		t.Errorf("retention 0 ran %d prune statements, want none", keep.calls)
	}
}
