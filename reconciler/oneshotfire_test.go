package reconciler_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
)

// oneShotAt is a one-shot task at at, version h1.
func oneShotAt(at time.Time) reconciler.Definition {
	d := eventTask()
	d.Spec.Trigger = reconciler.Trigger{At: &at}
	return d
}

// oneShotEvent is the one-shot's due event as a tenant could forge it:
// its code and hash are in the status API.
func oneShotEvent() map[string]any {
	return map[string]any{"name": "tasksync/one-shot.due", "data": map[string]any{"tenant_id": "acme", "code": "ping", "hash": "h1"}}
}

// TestOneShotRefusesEarlyAndExpiredFires: a one-shot's run executes only
// at its time (within a minute's skew) and only for a version applied
// before that time; a forged due event fires nothing early or expired,
// with the store up or, on the outage path that cannot look up earlier
// runs, down.
func TestOneShotRefusesEarlyAndExpiredFires(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name      string
		down      bool
		at        time.Time
		appliedAt time.Time
		runs      bool
	}{
		{"early", false, now.Add(time.Hour), now.Add(-time.Hour), false},
		{"expired", false, now.Add(-time.Hour), now.Add(-time.Minute), false},
		{"due", false, now.Add(-10 * time.Second), now.Add(-time.Hour), true},
		{"due within the skew", false, now.Add(30 * time.Second), now.Add(-time.Hour), true},
		{"early during an outage", true, now.Add(time.Hour), time.Time{}, false},
		{"long past during an outage", true, now.Add(-time.Hour), time.Time{}, false},
		{"due during an outage", true, now.Add(-10 * time.Second), time.Time{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			records := &fakeRecords{down: c.down, ref: reconciler.AppliedRef{ID: 7, Revision: 2, Hash: "h1", AppliedAt: c.appliedAt}}
			actions := &fakeActions{}
			r := &reconciler.TaskRunner{Records: records, Actions: actions, Spool: reconciler.NewRunSpool(&fakeSpoolStore{}, reconciler.SpoolOptions{})}
			_, err := r.Run(context.Background(), "acme", oneShotAt(c.at), reconciler.RunInput{RunID: "forged", Event: oneShotEvent()})
			if c.runs && (err != nil || actions.calls != 1) {
				t.Errorf("Run = %v after %d calls; want it executed", err, actions.calls)
			}
			if !c.runs && (!errors.Is(err, reconciler.ErrStale) || actions.calls != 0) {
				t.Errorf("Run = %v after %d calls; want it refused (ErrStale), nothing executed", err, actions.calls)
			}
		})
	}
}
