package reconciler

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RunInput is what the engine passes to one attempt of a run.
type RunInput struct {
	RunID   string         // the engine's run id
	Attempt int            // 0 for the first attempt
	Event   map[string]any // the triggering event: name, data, ts, ...
}

// RunStatus is the state of a run attempt, as root_task_runs records it.
type RunStatus string

// The run statuses.
const (
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
)

// AppliedRef is the applied version of a definition a run belongs to.
type AppliedRef struct {
	ID       int64
	Revision int64
	Hash     string
}

// RunRecorder keeps run records (store.Store).
type RunRecorder interface {
	// Current returns the live applied version of tenant/code; ok is false
	// when it is retired or unknown.
	Current(ctx context.Context, tenant, code string) (ref AppliedRef, ok bool, err error)
	// AppliedDefinition returns the live applied version of tenant/code itself.
	AppliedDefinition(ctx context.Context, tenant, code string) (def Definition, ok bool, err error)
	// StartRun records an attempt as running and returns its record id.
	StartRun(ctx context.Context, ref AppliedRef, in RunInput) (int64, error)
	// RanBefore reports whether the definition's version has a run under
	// another run id: a one-shot runs once.
	RanBefore(ctx context.Context, ref AppliedRef, runID string) (bool, error)
	// FinishRun records an attempt's outcome.
	FinishRun(ctx context.Context, ref AppliedRef, runID int64, status RunStatus, took time.Duration, errText, output string) error
}

// Actions perform a task's action (executor adapters). Their errors and
// outputs are already redacted of secret values.
type Actions interface {
	APICall(ctx context.Context, tenant string, call APICall, event map[string]any) (output any, err error)
	PythonScript(ctx context.Context, tenant string, py PythonScript, event map[string]any) (output any, err error)
	// StepAPICall and StepPythonScript perform a workflow step's action,
	// whose templates may also read the earlier steps' outputs.
	StepAPICall(ctx context.Context, tenant string, call APICall, event, steps map[string]any) (output any, err error)
	StepPythonScript(ctx context.Context, tenant string, py PythonScript, event, steps map[string]any) (output any, err error)
}

// ErrStale means a run belongs to a definition that was retired or changed
// since its function was registered; it does not execute.
var ErrStale = errors.New("the definition was retired or changed since this run was scheduled")

// ErrAlreadyRan means a one-shot's version already ran under another run.
var ErrAlreadyRan = errors.New("this one-shot already ran")

// TaskRunner executes ScheduledTask runs: it checks that the run belongs
// to the applied version, records the attempt, performs the action and
// records the outcome.
type TaskRunner struct {
	Records RunRecorder
	Actions Actions
	// OutputLimit caps the output stored with a run; default 64 KiB.
	OutputLimit int
}

// current returns the applied version ref of served, or ErrStale when a
// run of served may not execute it.
func (r *TaskRunner) current(ctx context.Context, tenant string, served Definition, ref AppliedRef) (Definition, error) {
	if served.Spec.Trigger.Type() == TriggerDate {
		return served, ErrStale
	}
	def, ok, err := r.Records.AppliedDefinition(ctx, tenant, served.Metadata.Code)
	if err != nil {
		return served, fmt.Errorf("look up the applied definition: %w", err)
	}
	if !ok || def.Hash != ref.Hash || def.Kind != served.Kind || !def.Spec.Active || def.Spec.Trigger.Type() == TriggerDate {
		return served, ErrStale
	}
	return def, nil
}

// Run executes one attempt of def's run.
func (r *TaskRunner) Run(ctx context.Context, tenant string, def Definition, in RunInput) (any, error) {
	ref, ok, err := r.Records.Current(ctx, tenant, def.Metadata.Code)
	if err != nil {
		return nil, fmt.Errorf("look up the applied definition: %w", err)
	}
	if !ok {
		return nil, ErrStale
	}
	if ref.Hash != def.Hash {
		// This replica serves another version than the applied one: a
		// follower between the leader's apply and its own reload. A
		// scheduled or event run executes the applied version, as the
		// leader would; a one-shot's run belongs to its version only.
		if def, err = r.current(ctx, tenant, def, ref); err != nil {
			return nil, err
		}
	}
	if def.Spec.Trigger.Type() == TriggerDate {
		// A one-shot's event names the version it was sent for.
		data, _ := in.Event["data"].(map[string]any)
		if h, _ := data["hash"].(string); h != def.Hash {
			return nil, ErrStale
		}
		ran, err := r.Records.RanBefore(ctx, ref, in.RunID)
		if err != nil {
			return nil, fmt.Errorf("look up earlier runs: %w", err)
		}
		if ran {
			return nil, ErrAlreadyRan
		}
	}
	id, err := r.Records.StartRun(ctx, ref, in)
	if err != nil {
		return nil, fmt.Errorf("record the run: %w", err)
	}
	start := time.Now()
	var out any
	switch {
	case def.Kind != KindScheduledTask || def.Spec.Config == nil:
		err = fmt.Errorf("%s %s cannot run as a task", def.Kind, def.Metadata.Code)
	case def.Spec.Config.APICall != nil:
		out, err = r.Actions.APICall(ctx, tenant, *def.Spec.Config.APICall, in.Event)
	case def.Spec.Config.PythonScript != nil:
		out, err = r.Actions.PythonScript(ctx, tenant, *def.Spec.Config.PythonScript, in.Event)
	}
	status, errText := RunSucceeded, ""
	if err != nil {
		status, errText = RunFailed, err.Error()
	}
	limit := r.OutputLimit
	if limit <= 0 {
		limit = MaxResponseCaptureBytes
	}
	output := outputText(out, limit)
	if ferr := r.Records.FinishRun(context.WithoutCancel(ctx), ref, id, status, time.Since(start), errText, output); ferr != nil {
		return out, errors.Join(err, fmt.Errorf("record the outcome: %w", ferr))
	}
	return out, err
}

// outputText renders an action's output for the run record, capped.
func outputText(v any, limit int) string {
	if v == nil {
		return ""
	}
	b, err := jsonMarshal(v)
	if err != nil {
		b = []byte(fmt.Sprint(v))
	}
	if len(b) > limit {
		b = b[:limit]
	}
	return string(b)
}

// StepActions are the actions workflow steps use: the runner's.
func (r *TaskRunner) StepActions() Actions { return r.Actions }

// RunRecords keeps the runner's run records.
func (r *TaskRunner) RunRecords() RunRecorder { return r.Records }

// WorkflowRecorder records workflow runs (store.Store).
type WorkflowRecorder interface {
	// RecordWorkflowRun records an attempt of a workflow run and the
	// outcome of its steps so far.
	RecordWorkflowRun(ctx context.Context, ref AppliedRef, in RunInput, status RunStatus, errText string, steps []StepOutcome) error
}

// StepOutcome is what became of one workflow step in a run.
type StepOutcome struct {
	ID     string `json:"id"`
	Status string `json:"status"` // completed, skipped, timed_out, failed
	Output string `json:"output,omitempty"`
	Error  string `json:"error,omitempty"`
}
