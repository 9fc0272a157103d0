package inngest

import (
	"context"
	"errors"

	"github.com/riveredge/tasksync/reconciler"
)

// Apps is a Registry bound to the Runner its apps' functions call: the
// reconciler.Apps the controller keeps in step with the applied state.
// Its other methods are the Registry's.
type Apps struct {
	*Registry
	run Runner
}

// WithRunner returns r bound to run.
func (r *Registry) WithRunner(run Runner) *Apps { return &Apps{Registry: r, run: run} }

// SetTenant serves defs as the tenant's app, its functions calling the
// bound runner (Registry.SetTenant).
func (a *Apps) SetTenant(tenant string, defs []reconciler.Definition) error {
	return a.Registry.SetTenant(tenant, defs, a.run)
}

// RefuseRuns stands in for the task runner in a process that registers
// apps but does not serve them (run --once): the daemon executes runs.
type RefuseRuns struct{}

// Run refuses: this process executes no runs.
func (RefuseRuns) Run(context.Context, string, reconciler.Definition, reconciler.RunInput) (any, error) {
	return nil, errors.New("this process registers apps but does not execute runs")
}

// StepActions: none, this process executes no runs.
func (RefuseRuns) StepActions() reconciler.Actions { return nil }

// RunRecords: none, this process executes no runs.
func (RefuseRuns) RunRecords() reconciler.RunRecorder { return nil }
