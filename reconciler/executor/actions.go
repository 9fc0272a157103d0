package executor

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
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

// ActionsOptions configure NewActions: what `tasksync run` is given.
type ActionsOptions struct {
	// Allow lists the networks api_call may reach despite the SSRF guard.
	Allow []netip.Prefix
	// DNSServer, if set, is the host:port api_call resolves names with;
	// default the system's resolver.
	DNSServer string
	// Secrets are the tenants' secrets, resolved by both executors.
	Secrets *Secrets
	// Sandbox runs python_script. NewActions adds Hide to its Mask and
	// checks it.
	Sandbox *Sandbox
	// Hide lists host paths hidden from scripts, such as the definitions
	// tree and the secrets directory; those that do not exist are left
	// out, symlinks are resolved.
	Hide []string
	// Logger receives whether the sandbox is ready, and how runs are
	// isolated, or why python_script runs will be refused.
	Logger *slog.Logger
}

// NewActions builds the executors of the task steps: api_call through the
// SSRF guard, python_script in the sandbox, both with the tenants'
// secrets. A sandbox that fails its check is kept and logged once: its
// runs are refused with the reason.
func NewActions(ctx context.Context, o ActionsOptions) (*Actions, error) {
	envs, err := expr.NewEnvs()
	if err != nil {
		return nil, err
	}
	sb := o.Sandbox
	for _, p := range o.Hide {
		if p == "" {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil {
			if real, err := filepath.EvalSymlinks(abs); err == nil {
				sb.Mask = append(sb.Mask, real)
			}
		}
	}
	log := o.Logger
	if err := sb.Check(ctx); err != nil {
		log.Warn("python_script runs will be refused", "err", err)
	} else {
		if os.Geteuid() == 0 {
			log.Info("python_script sandbox ready: each run as a uid of its own (running the daemon as a non-root user is recommended)", "uids", sb.UIDs.String(), "cgroups", sb.CgroupMode())
		} else {
			log.Info("python_script sandbox ready: each run in a user namespace of its own", "uid", os.Geteuid(), "cgroups", sb.CgroupMode())
		}
		if sb.Cgroup == CgroupNone {
			log.Warn("python_script runs have no cgroup (--sandbox-cgroup none): each process has its own memory and CPU limits, so one run may use memory_mb times 64 processes and every core")
		}
	}
	guard := NewGuard(o.Allow)
	if o.DNSServer != "" {
		guard.UseDNSServer(o.DNSServer)
	}
	return &Actions{HTTP: NewHTTP(guard, envs, o.Secrets), Sandbox: sb}, nil
}

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
