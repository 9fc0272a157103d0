package reconciler

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
)

// Final marks err as one no retry can cure (ErrNoRetry): the same event
// and definition would fail the same way, so the attempt is the run's
// last, whatever its `retries`. Its message then says that the run is
// not retried. A nil err stays nil.
func Final(err error) error {
	if err == nil || errors.Is(err, ErrNoRetry) {
		return err
	}
	return &finalError{err: err}
}

type finalError struct{ err error }

func (e *finalError) Error() string {
	return e.err.Error() + " (not retried: a retry would fail the same way)"
}

// Unwrap yields ErrNoRetry and the error itself, so that errors.Is finds
// either by identity.
func (e *finalError) Unwrap() []error { return []error{ErrNoRetry, e.err} }

// PanicError is a panic recovered while a run's action executed: the
// attempt fails with it, and whoever serves the run logs and counts it.
type PanicError struct {
	Value any    // what was recovered
	Stack []byte // where
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("internal error: the action panicked: %v", e.Value)
}

// recovering are the actions of a, with a panic in any of them returned
// as a *PanicError instead of unwinding the run's handler.
type recovering struct{ a Actions }

func guard(do func() (any, error)) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return do()
}

func (r recovering) APICall(ctx context.Context, tenant string, call APICall, event map[string]any) (any, error) {
	return guard(func() (any, error) { return r.a.APICall(ctx, tenant, call, event) })
}

func (r recovering) PythonScript(ctx context.Context, tenant string, py PythonScript, event map[string]any) (any, error) {
	return guard(func() (any, error) { return r.a.PythonScript(ctx, tenant, py, event) })
}

func (r recovering) StepAPICall(ctx context.Context, tenant string, call APICall, event, steps map[string]any) (any, error) {
	return guard(func() (any, error) { return r.a.StepAPICall(ctx, tenant, call, event, steps) })
}

func (r recovering) StepPythonScript(ctx context.Context, tenant string, py PythonScript, event, steps map[string]any) (any, error) {
	return guard(func() (any, error) { return r.a.StepPythonScript(ctx, tenant, py, event, steps) })
}

// actions are the runner's actions, each panic recovered as a
// *PanicError; nil when the runner has none.
func (r *TaskRunner) actions() Actions {
	if r.Actions == nil {
		return nil
	}
	return recovering{r.Actions}
}
