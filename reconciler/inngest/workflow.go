package inngest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/inngest/inngestgo"
	sdkerrors "github.com/inngest/inngestgo/errors"
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
	delay   time.Duration        // retry_delay: each retry of a failed step waits this long
	key     *reconciler.EventKey // checks tasksync's own events (reconciler.CheckSigned)
	// send sends a send_event step's event (the tenant's client's Send).
	send func(ctx context.Context, event any) (string, error)
	// ended counts and logs an attempt's end. An attempt whose step
	// action failed ends in the SDK, never returning to the function's
	// handler, so the run tells it here, after recording it.
	ended func(attemptEnd)
}

// attemptEnd is how one attempt of a workflow run ended.
type attemptEnd struct {
	in         reconciler.RunInput
	err        error // nil: it succeeded
	failedStep string
	final      bool      // the run's last attempt
	started    time.Time // when the attempt started: its record's, else its last call's
}

// stepError is how a failed step's error goes to Inngest: a final one
// (reconciler.ErrNoRetry) is not retried, others are, at a fixed time
// when the workflow has a retry_delay.
func (w *workflow) stepError(err error) error {
	return sdkError(err, w.delay)
}

// run executes (or, replaying memoized steps, continues) one run. It
// returns a nil result and no error on an invocation that only advanced
// to a new step, which Inngest calls again.
func (w *workflow) run(ctx context.Context, in inngestgo.Input[any]) (any, error) {
	began := time.Now()
	ri := runInput(in, w.def.Spec.Trigger)
	ended := func(err error, failedStep string, final bool, started time.Time) {
		if started.IsZero() {
			started = began
		}
		if w.ended != nil {
			w.ended(attemptEnd{in: ri, err: err, failedStep: failedStep, final: final, started: started})
		}
	}
	event := ri.Event
	if event == nil {
		event = map[string]any{}
	}
	if err := reconciler.CheckSigned(w.key, ri, time.Now()); err != nil {
		return nil, err
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
			err = fmt.Errorf("look up the applied workflow: %w", err)
			ended(err, "", lastAttempt(err, ri.Attempt, w.def.Spec.Retries), time.Time{})
			return nil, err
		}
		if !ok {
			// Retired: a run of it, new or in flight, does not go on. (A
			// changed workflow's runs in flight continue with its new
			// steps, matched by id: completed steps are not repeated.) An
			// attempt it left running, waiting for an event or a sleep's
			// end, is closed now rather than by the leader much later.
			if wr, ok := w.records.(reconciler.WorkflowRecorder); ok {
				if err := wr.StopRetiredRun(context.WithoutCancel(ctx), w.tenant, w.def.Metadata.Code, ri.RunID); err != nil {
					return nil, errors.Join(reconciler.ErrStale, err)
				}
			}
			return nil, reconciler.ErrStale
		}
		if err := reconciler.CheckManual(ri, w.def.Metadata.Code, cur.Hash); err != nil {
			return nil, err
		}
		ref = cur
		// The first call checks the fire at now and claims it for this
		// run; later ones (after a sleep, a retry) only its version.
		if err := reconciler.CheckWorkflowFire(ctx, w.records, w.def.Spec.Trigger, cur, ri, time.Now()); err != nil {
			return nil, err
		}
	}
	steps := map[string]any{}
	var outcomes []reconciler.StepOutcome
	var tried stepTry    // the step action this invocation executed, if any
	var resume time.Time // when the sleep or wait this invocation stopped at ends
	record := func(a reconciler.WorkflowAttempt) (time.Time, error) {
		wr, ok := w.records.(reconciler.WorkflowRecorder)
		if !ok {
			return time.Time{}, nil
		}
		a.Steps = outcomes
		if a.Status == reconciler.RunRunning {
			a.Deadline = reconciler.WorkflowDeadline(w.def, time.Now(), resume)
		}
		started, err := wr.RecordWorkflowRun(context.WithoutCancel(ctx), ref, ri, a)
		if err != nil {
			return time.Time{}, fmt.Errorf("record the run: %w", err)
		}
		return started, nil
	}
	// fail records the attempt as failed at stepID and, unless the
	// failure is a replay of one already told, tells its end.
	fail := func(stepID string, err error, final, replayed bool) error {
		outcomes = append(outcomes, reconciler.StepOutcome{ID: stepID, Status: "failed", Error: err.Error()})
		started, rerr := record(reconciler.WorkflowAttempt{Status: reconciler.RunFailed, Error: err.Error(), FailedStep: stepID, Final: final})
		if !replayed {
			ended(err, stepID, final, started)
		}
		return rerr
	}
	vars := func() map[string]any { return map[string]any{"event": event, "steps": steps, "tenant": w.tenant} }
	defer func() {
		// The SDK stops an invocation with a panic it recovers: after the
		// one step action it executed (which Inngest retries if it
		// failed), or at a step Inngest has yet to run (a sleep, a wait).
		// The attempt is recorded as it stands: failed at the step that
		// failed, or running.
		if p := recover(); p != nil {
			switch {
			case tried.id != "" && tried.err != nil:
				_ = fail(tried.id, tried.err, tried.final, false) // best effort: the retry records again
			case tried.id != "":
				outcomes = append(outcomes, reconciler.StepOutcome{ID: tried.id, Status: "completed", Output: reconciler.OutputJSON(tried.out, stepOutputLimit)})
				_, _ = record(reconciler.WorkflowAttempt{Status: reconciler.RunRunning})
			default:
				_, _ = record(reconciler.WorkflowAttempt{Status: reconciler.RunRunning})
			}
			panic(p)
		}
	}()
	for _, st := range w.def.Spec.Steps {
		resume = time.Time{}
		if st.If != "" {
			ok, err := w.envs.Eval(ctx, expr.Step, st.If, vars())
			if err != nil {
				err = finalUnlessInterrupted(fmt.Errorf("step %s: if %q: %w", st.ID, st.If, err))
				return nil, errors.Join(err, fail(st.ID, err, noRetry(err) || ri.Attempt >= w.def.Spec.Retries, false))
			}
			if ok != true {
				steps[st.ID] = nil // skipped
				outcomes = append(outcomes, reconciler.StepOutcome{ID: st.ID, Status: "skipped"})
				continue
			}
		}
		out, err := w.step(ctx, st, event, steps, vars, ri, &tried, &resume)
		if err != nil {
			// A step's memoized failure (its retries spent: Inngest does
			// not retry the run), a failure no retry can cure, or an error
			// of the run itself, which Inngest retries.
			replayed := sdkerrors.IsStepError(err)
			final := replayed || noRetry(err) || ri.Attempt >= w.def.Spec.Retries
			err = fmt.Errorf("step %s: %w", st.ID, err)
			return nil, errors.Join(err, fail(st.ID, err, final, replayed))
		}
		steps[st.ID] = out
		status := "completed"
		if out == nil && st.WaitForEvent != nil {
			status = "timed_out"
		}
		outcomes = append(outcomes, reconciler.StepOutcome{ID: st.ID, Status: status, Output: reconciler.OutputJSON(out, stepOutputLimit)})
	}
	started, err := record(reconciler.WorkflowAttempt{Status: reconciler.RunSucceeded, Final: true})
	if err != nil {
		ended(err, "", lastAttempt(err, ri.Attempt, w.def.Spec.Retries), started)
		return nil, err
	}
	ended(nil, "", true, started)
	return steps, nil
}

// stepOutputLimit caps a step's output in its run record.
const stepOutputLimit = 4096

// stepTry is the step action an invocation executed: its output, or its
// error and whether Inngest will retry it.
type stepTry struct {
	id    string
	out   any
	err   error
	final bool
}

// noRetry reports whether err is one Inngest does not retry.
func noRetry(err error) bool {
	return sdkerrors.IsNoRetryError(err) || errors.Is(err, reconciler.ErrNoRetry)
}

// action runs an executor action as the Inngest step id, its output made
// plain JSON so that a replay sees what the first run saw.
// What it executed, and how that ended, goes to tried: the invocation's
// record names it.
func (w *workflow) action(ctx context.Context, id string, in reconciler.RunInput, tried *stepTry, do func(context.Context) (any, error)) (any, error) {
	return step.Run(ctx, id, func(ctx context.Context) (any, error) {
		*tried = stepTry{id: id}
		out, err := func() (any, error) {
			out, err := do(ctx)
			if err != nil {
				return nil, err
			}
			return plain(out)
		}()
		if err != nil {
			*tried = stepTry{id: id, err: fmt.Errorf("step %s: %w", id, err), final: noRetry(err) || in.Attempt >= w.def.Spec.Retries}
			return nil, w.stepError(err)
		}
		tried.out = out
		return out, nil
	})
}

func (w *workflow) step(ctx context.Context, st reconciler.Step, event, steps map[string]any, vars func() map[string]any, in reconciler.RunInput, tried *stepTry, resume *time.Time) (any, error) {
	switch {
	case st.APICall != nil:
		return w.action(ctx, st.ID, in, tried, func(ctx context.Context) (any, error) {
			if w.actions == nil {
				return nil, errors.New("this process does not execute runs")
			}
			return w.actions.StepAPICall(ctx, w.tenant, *st.APICall, event, steps)
		})
	case st.PythonScript != nil:
		return w.action(ctx, st.ID, in, tried, func(ctx context.Context) (any, error) {
			if w.actions == nil {
				return nil, errors.New("this process does not execute runs")
			}
			return w.actions.StepPythonScript(ctx, w.tenant, *st.PythonScript, event, steps)
		})
	case st.Sleep > 0:
		*resume = time.Now().Add(time.Duration(st.Sleep))
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
		now := time.Now()
		if !until.After(now) {
			// A time that has passed: nothing to wait for. Inngest refuses
			// a negative sleep, and the refused item would hold up every
			// later run of the function.
			return nil, nil
		}
		if until.Sub(now) > time.Duration(reconciler.MaxSleep) {
			return nil, reconciler.Final(fmt.Errorf("sleep_until %q: %s is more than %s ahead, the longest sleep Inngest allows",
				st.SleepUntil, until.UTC().Format(time.RFC3339), time.Duration(reconciler.MaxSleep)))
		}
		*resume = until
		step.SleepUntil(ctx, st.ID, until)
		return nil, nil
	case st.WaitForEvent != nil:
		*resume = time.Now().Add(time.Duration(st.WaitForEvent.Timeout))
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
		if _, err := json.Marshal(data); err != nil {
			// NaN or an infinity: no retry makes it JSON.
			return nil, reconciler.Final(fmt.Errorf("send_event data: %w", err))
		}
		// Sent as an action step, so a failed send is recorded and
		// counted as any failed step is. Its memoized output is the id,
		// as the SDK's step.Send memoizes it.
		id, err := w.action(ctx, st.ID, in, tried, func(ctx context.Context) (any, error) {
			if w.send == nil {
				return nil, errors.New("this process does not send events")
			}
			id, err := w.send(ctx, inngestgo.Event{Name: st.SendEvent.Name, Data: data})
			if err != nil {
				return nil, fmt.Errorf("send event %s: %w", st.SendEvent.Name, err)
			}
			return id, nil
		})
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
