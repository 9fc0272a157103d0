package reconciler_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riveredge/tasksync/reconciler"
)

// manualRecords is a RunRecorder for the manual-run checks: it knows the
// applied version ref (none when retired), says every one-shot already
// ran, and fails as unreachable while down.
type manualRecords struct {
	retired, down bool
	ref           reconciler.AppliedRef
	started       []bool // the manual flag of each StartRun's input
}

func (f *manualRecords) Current(context.Context, string, string) (reconciler.AppliedRef, bool, error) {
	if f.down {
		return reconciler.AppliedRef{}, false, errDown
	}
	return f.ref, !f.retired, nil
}

func (f *manualRecords) AppliedDefinition(context.Context, string, string) (reconciler.Definition, bool, error) {
	return reconciler.Definition{}, false, errors.New("not asked for in these cases")
}

func (f *manualRecords) StartRun(_ context.Context, _ reconciler.AppliedRef, in reconciler.RunInput, _ time.Time) (int64, error) {
	if f.down {
		return 0, errDown
	}
	f.started = append(f.started, in.Manual())
	return 1, nil
}

func (f *manualRecords) RanBefore(context.Context, reconciler.AppliedRef, string) (bool, error) {
	return true, nil
}

func (f *manualRecords) FinishRun(context.Context, reconciler.AppliedRef, int64, reconciler.AttemptEnd) error {
	if f.down {
		return errDown
	}
	return nil
}

func manualInput(hash string) reconciler.RunInput {
	data := map[string]any{"tenant_id": "acme", "code": "ping"}
	if hash != "" {
		data["hash"] = hash
	}
	return reconciler.RunInput{RunID: "01MANUAL", Event: map[string]any{"name": reconciler.ManualRunEvent, "data": data}}
}

// TestManualRun: the runner executes a manual run only for the applied
// version its event names, never for a retired definition or another
// version; a one-shot runs by hand before its time and after its own
// run; while the store is down, the version served is the one checked.
func TestManualRun(t *testing.T) {
	oneShot := eventTask()
	at := time.Now().Add(time.Hour)
	oneShot.Spec.Trigger = reconciler.Trigger{At: &at}
	cases := []struct {
		name    string
		def     reconciler.Definition
		records manualRecords
		in      reconciler.RunInput
		wantErr string // "" to run
	}{
		{"applied version", eventTask(), manualRecords{ref: reconciler.AppliedRef{ID: 1, Hash: "h1"}}, manualInput("h1"), ""},
		{"retired", eventTask(), manualRecords{retired: true}, manualInput("h1"), "retired or changed"},
		{"another version", eventTask(), manualRecords{ref: reconciler.AppliedRef{ID: 1, Hash: "h1"}}, manualInput("h0"), "names another version than the applied one; see the status API"},
		{"no version", eventTask(), manualRecords{ref: reconciler.AppliedRef{ID: 1, Hash: "h1"}}, manualInput(""), "names no version"},
		{"one-shot before its time, after its run", oneShot, manualRecords{ref: reconciler.AppliedRef{ID: 1, Hash: "h1"}}, manualInput("h1"), ""},
		{"store down, served version", eventTask(), manualRecords{down: true}, manualInput("h1"), ""},
		{"store down, another version", eventTask(), manualRecords{down: true}, manualInput("h0"), "names another version than the applied one"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			acts := &fakeActions{}
			r := &reconciler.TaskRunner{Records: &tc.records, Actions: acts, Spool: reconciler.NewRunSpool(&fakeSpoolStore{}, reconciler.SpoolOptions{})}
			_, err := r.Run(context.Background(), "acme", tc.def, tc.in)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Run = %v, want it to run", err)
			case tc.wantErr != "" && (!errors.Is(err, reconciler.ErrStale) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Run = %v, want ErrStale saying %q", err, tc.wantErr)
			}
			if ran := acts.calls == 1; ran != (tc.wantErr == "") {
				t.Errorf("the action ran %d times", acts.calls)
			}
			for _, m := range tc.records.started {
				if !m {
					t.Error("the attempt was recorded without its manual mark")
				}
			}
		})
	}
	// A scheduled run is no manual one: CheckManual leaves it alone.
	if err := reconciler.CheckManual(reconciler.RunInput{Event: map[string]any{"name": "inngest/scheduled.timer"}}, "ping", "h1"); err != nil {
		t.Errorf("CheckManual of a scheduled run = %v", err)
	}
}
