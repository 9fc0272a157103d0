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
// runner uses.
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

// APICall performs an api_call with the task's variables.
func (a *Actions) APICall(ctx context.Context, tenant string, call reconciler.APICall, event map[string]any) (any, error) {
	res, err := a.HTTP.Run(ctx, call, expr.Task, taskVars(tenant, event))
	if res == nil {
		return nil, err
	}
	return res, err
}

// PythonScript runs a python_script in the sandbox, with its args and env
// rendered and the env's secret references resolved.
func (a *Actions) PythonScript(ctx context.Context, tenant string, py reconciler.PythonScript, event map[string]any) (any, error) {
	if a.Sandbox == nil {
		return nil, ErrSandboxUnavailable
	}
	red := &Redactor{}
	vars := taskVars(tenant, event)
	args := make([]string, len(py.Args))
	for i, s := range py.Args {
		v, err := a.HTTP.render(expr.Task, s, vars, red)
		if err != nil {
			return nil, red.Error(fmt.Errorf("args[%d]: %w", i, err))
		}
		args[i] = expr.Format(v)
	}
	env := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(py.Env)) {
		v, err := a.HTTP.render(expr.Task, py.Env[k], vars, red)
		if err != nil {
			return nil, red.Error(fmt.Errorf("env.%s: %w", k, err))
		}
		env[k] = expr.Format(v)
	}
	res, err := a.Sandbox.Run(ctx, py, args, env, red)
	if res == nil {
		return nil, err
	}
	return res, err
}
