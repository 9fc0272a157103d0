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
}

func (w *workflow) run(ctx context.Context, in inngestgo.Input[any]) (any, error) {
	event := runInput(in).Event
	if event == nil {
		event = map[string]any{}
	}
	steps := map[string]any{}
	vars := func() map[string]any { return map[string]any{"event": event, "steps": steps, "tenant": w.tenant} }
	for _, st := range w.def.Spec.Steps {
		if st.If != "" {
			ok, err := w.envs.Eval(expr.Step, st.If, vars())
			if err != nil {
				return nil, inngestgo.NoRetryError(fmt.Errorf("step %s: if %q: %w", st.ID, st.If, err))
			}
			if ok != true {
				steps[st.ID] = nil // skipped
				continue
			}
		}
		out, err := w.step(ctx, st, event, steps, vars)
		if err != nil {
			return nil, fmt.Errorf("step %s: %w", st.ID, err)
		}
		steps[st.ID] = out
	}
	return steps, nil
}

func (w *workflow) step(ctx context.Context, st reconciler.Step, event, steps map[string]any, vars func() map[string]any) (any, error) {
	switch {
	case st.APICall != nil:
		return step.Run(ctx, st.ID, func(ctx context.Context) (any, error) {
			if w.actions == nil {
				return nil, errors.New("this process does not execute runs")
			}
			out, err := w.actions.StepAPICall(ctx, w.tenant, *st.APICall, event, steps)
			if err != nil {
				return nil, err
			}
			return plain(out)
		})
	case st.PythonScript != nil:
		return step.Run(ctx, st.ID, func(ctx context.Context) (any, error) {
			if w.actions == nil {
				return nil, errors.New("this process does not execute runs")
			}
			out, err := w.actions.StepPythonScript(ctx, w.tenant, *st.PythonScript, event, steps)
			if err != nil {
				return nil, err
			}
			return plain(out)
		})
	case st.Sleep > 0:
		step.Sleep(ctx, st.ID, time.Duration(st.Sleep))
		return nil, nil
	case st.SleepUntil != "":
		v, err := w.envs.Eval(expr.Step, st.SleepUntil, vars())
		if err != nil {
			return nil, inngestgo.NoRetryError(fmt.Errorf("sleep_until %q: %w", st.SleepUntil, err))
		}
		until, err := asTime(v)
		if err != nil {
			return nil, inngestgo.NoRetryError(fmt.Errorf("sleep_until %q: %w", st.SleepUntil, err))
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
		data := map[string]any{}
		for k, v := range st.SendEvent.Data {
			r, err := renderValue(w.envs, v, vars())
			if err != nil {
				return nil, inngestgo.NoRetryError(fmt.Errorf("send_event data.%s: %w", k, err))
			}
			data[k] = r
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

// renderValue renders the templates of every string in a JSON value.
func renderValue(envs *expr.Envs, v any, vars map[string]any) (any, error) {
	switch x := v.(type) {
	case string:
		return envs.Render(expr.Step, x, vars)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := renderValue(envs, e, vars)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := renderValue(envs, e, vars)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
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
