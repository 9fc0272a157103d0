package executor

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/expr"
)

// Actions performs ScheduledTask actions: the reconciler.Actions the task
// runner uses. Each resolves only the secrets granted to the run's
// tenant, and what it returns, output and error, is already redacted of
// them: the run records, logs and the engine's output see nothing else.
type Actions struct {
	HTTP    *HTTP
	Sandbox *Sandbox
}

var _ reconciler.Actions = (*Actions)(nil)

func taskVars(tenant string, event map[string]any) map[string]any {
	if event == nil {
		event = map[string]any{}
	}
	return map[string]any{"event": event, "tenant": tenant}
}

func stepVars(tenant string, event, steps map[string]any) map[string]any {
	v := taskVars(tenant, event)
	if steps == nil {
		steps = map[string]any{}
	}
	v["steps"] = steps
	return v
}

// APICall performs an api_call with the task's variables.
func (a *Actions) APICall(ctx context.Context, tenant string, call reconciler.APICall, event map[string]any) (any, error) {
	return a.apiCall(ctx, tenant, call, expr.Task, taskVars(tenant, event))
}

// StepAPICall performs a workflow step's api_call.
func (a *Actions) StepAPICall(ctx context.Context, tenant string, call reconciler.APICall, event, steps map[string]any) (any, error) {
	return a.apiCall(ctx, tenant, call, expr.Step, stepVars(tenant, event, steps))
}

func (a *Actions) apiCall(ctx context.Context, tenant string, call reconciler.APICall, scope expr.Scope, vars map[string]any) (any, error) {
	res, err := a.HTTP.Run(ctx, tenant, call, scope, vars)
	if res == nil {
		return nil, err
	}
	return res, err
}

// PythonScript runs a python_script in the sandbox, with its args and env
// rendered and the env's secret references resolved.
func (a *Actions) PythonScript(ctx context.Context, tenant string, py reconciler.PythonScript, event map[string]any) (any, error) {
	return a.python(ctx, tenant, py, expr.Task, taskVars(tenant, event))
}

// StepPythonScript runs a workflow step's python_script.
func (a *Actions) StepPythonScript(ctx context.Context, tenant string, py reconciler.PythonScript, event, steps map[string]any) (any, error) {
	return a.python(ctx, tenant, py, expr.Step, stepVars(tenant, event, steps))
}

// python renders and resolves the script's args and env with tenant's
// secrets and runs it. Everything it returns, output and errors, is
// redacted (by Sandbox.Run, or here when it fails before).
func (a *Actions) python(ctx context.Context, tenant string, py reconciler.PythonScript, scope expr.Scope, vars map[string]any) (any, error) {
	if a.Sandbox == nil {
		return nil, ErrSandboxUnavailable
	}
	red := &Redactor{}
	args := make([]string, len(py.Args))
	for i, s := range py.Args {
		v, err := a.HTTP.render(ctx, tenant, scope, s, vars, red)
		if err != nil {
			return nil, red.Error(final(fmt.Errorf("args[%d]: %w", i, err)))
		}
		args[i] = expr.Format(v)
	}
	env := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(py.Env)) {
		v, err := a.HTTP.render(ctx, tenant, scope, py.Env[k], vars, red)
		if err != nil {
			return nil, red.Error(final(fmt.Errorf("env.%s: %w", k, err)))
		}
		env[k] = expr.Format(v)
	}
	res, err := a.Sandbox.Run(ctx, py, args, env, red)
	if res == nil {
		return nil, err
	}
	return res, err
}
