package inngest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/step"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/expr"
)

// workflow runs a Workflow's steps in order, each as one Inngest step, so
// that a retry or a restart of tasksync resumes after the last completed
// step: Inngest memoizes each step's result and replays the function up
// to the first step it has not seen, and every decision here (a step's
// `if`, a template) depends only on the event and those results.
type workflow struct {
	tenant  string
	def     reconciler.Definition
	envs    *expr.Envs
	actions reconciler.Actions
	records reconciler.RunRecorder
	delay   time.Duration // retry_delay: each retry of a failed step waits this long
	// stepEnded counts an attempt of a step's action that failed with
	// err: its invocation ends in the SDK, never returning to the
	// function's handler.
	stepEnded func(err error, in reconciler.RunInput)
}

// stepError is how a failed step's error goes to Inngest: a final one
// (reconciler.ErrFinal) is not retried, others are, at a fixed time when
// the workflow has a retry_delay.
func (w *workflow) stepError(err error) error {
	return sdkError(err, w.delay)
}

// run executes (or, replaying memoized steps, continues) one run. It
// returns a nil result and no error on an invocation that only advanced
// to a new step, which Inngest calls again.
func (w *workflow) run(ctx context.Context, in inngestgo.Input[any]) (any, error) {
	ri := runInput(in)
	event := ri.Event
	if event == nil {
		event = map[string]any{}
	}
	var ref reconciler.AppliedRef
	if w.records != nil {
		cur, ok, err := w.records.Current(ctx, w.tenant, w.def.Metadata.Code)
		if errors.Is(err, reconciler.ErrStoreUnavailable) {
			// The database cannot be reached: run the version this replica
			// serves; the records wait in the runner's spool.
			cur, ok, err = reconciler.ServedRef(w.tenant, w.def), true, nil
		}
		if err != nil {
			return nil, fmt.Errorf("look up the applied workflow: %w", err)
		}
		if !ok {
			// Retired: a run of it, new or in flight, does not go on. (A
			// changed workflow's runs in flight continue with its new
			// steps, matched by id: completed steps are not repeated.)
			return nil, reconciler.ErrStale
		}
		ref = cur
	}
	steps := map[string]any{}
	var outcomes []reconciler.StepOutcome
	record := func(status reconciler.RunStatus, errText string) error {
		wr, ok := w.records.(reconciler.WorkflowRecorder)
		if !ok {
			return nil
		}
		if err := wr.RecordWorkflowRun(context.WithoutCancel(ctx), ref, ri, status, errText, outcomes); err != nil {
			return fmt.Errorf("record the run: %w", err)
		}
		return nil
	}
	vars := func() map[string]any { return map[string]any{"event": event, "steps": steps, "tenant": w.tenant} }
	defer func() {
		// A step that Inngest has yet to run stops this invocation with a
		// panic the SDK recovers; only a finished or failed run is
		// recorded as such.
		if p := recover(); p != nil {
			w.progress(record)
			panic(p)
		}
	}()
	for _, st := range w.def.Spec.Steps {
		if st.If != "" {
			ok, err := w.envs.Eval(ctx, expr.Step, st.If, vars())
			if err != nil {
				err = finalUnlessInterrupted(fmt.Errorf("step %s: if %q: %w", st.ID, st.If, err))
				outcomes = append(outcomes, reconciler.StepOutcome{ID: st.ID, Status: "failed", Error: err.Error()})
				return nil, errors.Join(err, record(reconciler.RunFailed, err.Error()))
			}
			if ok != true {
				steps[st.ID] = nil // skipped
				outcomes = append(outcomes, reconciler.StepOutcome{ID: st.ID, Status: "skipped"})
				continue
			}
		}
		out, err := w.step(ctx, st, event, steps, vars, ri)
		if err != nil {
			err = fmt.Errorf("step %s: %w", st.ID, err)
			outcomes = append(outcomes, reconciler.StepOutcome{ID: st.ID, Status: "failed", Error: err.Error()})
			return nil, errors.Join(err, record(reconciler.RunFailed, err.Error()))
		}
		steps[st.ID] = out
		status := "completed"
		if out == nil && st.WaitForEvent != nil {
			status = "timed_out"
		}
		outcomes = append(outcomes, reconciler.StepOutcome{ID: st.ID, Status: status, Output: truncate(out)})
	}
	if err := record(reconciler.RunSucceeded, ""); err != nil {
		return nil, err
	}
	return steps, nil
}

// progress records a run's steps so far. It is best effort: the
// invocation that finishes or fails the run writes the final record, and
// that one's failure is reported.
func (w *workflow) progress(record func(reconciler.RunStatus, string) error) {
	if err := record(reconciler.RunRunning, ""); err != nil {
		return
	}
}

// truncate renders a step's output for its record, capped.
func truncate(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	if len(b) > 4096 {
		b = b[:4096]
	}
	return string(b)
}

// action runs an executor action as the Inngest step id, its output made
// plain JSON so that a replay sees what the first run saw.
func (w *workflow) action(ctx context.Context, id string, in reconciler.RunInput, do func(context.Context) (any, error)) (any, error) {
	return step.Run(ctx, id, func(ctx context.Context) (any, error) {
		if w.actions == nil {
			return nil, errors.New("this process does not execute runs")
		}
		out, err := do(ctx)
		if err != nil {
			if w.stepEnded != nil {
				w.stepEnded(err, in)
			}
			return nil, w.stepError(err)
		}
		return plain(out)
	})
}

func (w *workflow) step(ctx context.Context, st reconciler.Step, event, steps map[string]any, vars func() map[string]any, in reconciler.RunInput) (any, error) {
	switch {
	case st.APICall != nil:
		return w.action(ctx, st.ID, in, func(ctx context.Context) (any, error) {
			return w.actions.StepAPICall(ctx, w.tenant, *st.APICall, event, steps)
		})
	case st.PythonScript != nil:
		return w.action(ctx, st.ID, in, func(ctx context.Context) (any, error) {
			return w.actions.StepPythonScript(ctx, w.tenant, *st.PythonScript, event, steps)
		})
	case st.Sleep > 0:
		step.Sleep(ctx, st.ID, time.Duration(st.Sleep))
		return nil, nil
	case st.SleepUntil != "":
		v, err := w.envs.Eval(ctx, expr.Step, st.SleepUntil, vars())
		if err != nil {
			return nil, finalUnlessInterrupted(fmt.Errorf("sleep_until %q: %w", st.SleepUntil, err))
		}
		until, err := asTime(v)
		if err != nil {
			return nil, reconciler.Final(fmt.Errorf("sleep_until %q: %w", st.SleepUntil, err))
		}
		step.SleepUntil(ctx, st.ID, until)
		return nil, nil
	case st.WaitForEvent != nil:
		cond := w.waitCondition(*st.WaitForEvent)
		got, err := step.WaitForEvent[map[string]any](ctx, st.ID, step.WaitForEventOpts{
			Event: st.WaitForEvent.Event, Timeout: time.Duration(st.WaitForEvent.Timeout), If: &cond})
		if errors.Is(err, step.ErrEventNotReceived) {
			return nil, nil // timed out: steps.<id> is null
		}
		if err != nil {
			return nil, err
		}
		return plain(got)
	case st.SendEvent != nil:
		rendered, err := w.envs.RenderValue(ctx, expr.Step, st.SendEvent.Data, vars(), nil)
		if err != nil {
			return nil, finalUnlessInterrupted(fmt.Errorf("send_event data: %w", err))
		}
		data, _ := rendered.(map[string]any)
		if data == nil {
			data = map[string]any{}
		}
		data["tenant_id"] = w.tenant // never another tenant's
		id, err := step.Send(ctx, st.ID, inngestgo.Event{Name: st.SendEvent.Name, Data: data})
		if err != nil {
			return nil, err
		}
		return map[string]any{"id": id}, nil
	}
	return nil, fmt.Errorf("step %s has no action", st.ID)
}

// waitCondition is the expression Inngest matches awaited events with: the
// tenant guard on the awaited event (so that another tenant's event never
// resumes this run, whatever its data), `match` as equality of that field
// in both events, and the step's own `if`.
func (w *workflow) waitCondition(wf reconciler.WaitForEvent) string {
	parts := []string{fmt.Sprintf("async.data.tenant_id == %s", celString(w.tenant))}
	if wf.Match != "" {
		parts = append(parts, fmt.Sprintf("async.%s == event.%s", wf.Match, wf.Match))
	}
	if wf.If != "" {
		parts = append(parts, "("+wf.If+")")
	}
	return strings.Join(parts, " && ")
}

// plain turns a step's output into plain JSON values, as Inngest will
// return it when the step is replayed, so that expressions see the same
// thing either way.
func plain(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func asTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		return time.Parse(time.RFC3339, x)
	}
	return time.Time{}, fmt.Errorf("yields %T, not a time", v)
}
