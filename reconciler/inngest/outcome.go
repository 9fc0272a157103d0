package inngest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/inngest/inngestgo"
	sdkerrors "github.com/inngest/inngestgo/errors"
	"github.com/inngest/inngestgo/middleware"

	"github.com/riveredge/tasksync/reconciler"
	"github.com/riveredge/tasksync/reconciler/expr"
)

// How an attempt's end is counted. An attempt that fails is its run's
// last when its error is final (reconciler.ErrNoRetry: a retry would fail
// the same way; Inngest is told not to retry) or when it is attempt
// number `retries` (Inngest numbers attempts from 0 and makes retries+1
// of them; for a workflow, each step has that many). Only then is the run
// counted as failed; before, the attempt is counted as retrying.
//
// The attempt number is Inngest's; `retries` is that of the definition
// this replica serves, which is the one Inngest was given unless the
// definition changed during the run.

// lastAttempt reports whether an attempt that failed with err is its
// run's last.
func lastAttempt(err error, attempt, retries int) bool {
	return errors.Is(err, reconciler.ErrNoRetry) || attempt >= retries
}

// countEnd counts an attempt that ended with err (nil: it succeeded) in
// the attempt metrics, and its run in the run metrics when the attempt
// was the run's last.
func (r *Registry) countEnd(tenant, kind string, err error, attempt, retries int) {
	switch {
	case err == nil:
		r.metrics.attempts.WithLabelValues(tenant, kind, string(reconciler.RunSucceeded)).Inc()
		r.metrics.runs.WithLabelValues(tenant, kind, string(reconciler.RunSucceeded)).Inc()
	case lastAttempt(err, attempt, retries):
		r.metrics.attempts.WithLabelValues(tenant, kind, string(reconciler.RunFailed)).Inc()
		r.metrics.runs.WithLabelValues(tenant, kind, string(reconciler.RunFailed)).Inc()
	default:
		r.metrics.attempts.WithLabelValues(tenant, kind, attemptRetrying).Inc()
	}
}

// replayedStepFailure reports whether err is a workflow step's failure
// that Inngest replays to the function after the step's last attempt:
// that attempt was counted when it failed.
func replayedStepFailure(err error) bool {
	return errors.Is(err, sdkerrors.StepError{})
}

// sdkError is err as the SDK is given it: final errors with NoRetryError,
// others with the definition's retry delay, if any.
func sdkError(err error, delay time.Duration) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, reconciler.ErrNoRetry):
		return inngestgo.NoRetryError(err)
	case delay > 0:
		return inngestgo.RetryAtError(err, retryAt(time.Now(), delay))
	}
	return err
}

// actionPanicked logs and counts a panic an action's run recovered
// (reconciler.PanicError), if err holds one.
func (r *Registry) actionPanicked(tenant, code string, in reconciler.RunInput, err error) {
	var pe *reconciler.PanicError
	if !errors.As(err, &pe) {
		return
	}
	r.metrics.panics.Inc()
	r.opts.Logger.Error("panic recovered in a run's action", "tenant", tenant, "function", r.FunctionID(tenant, code),
		"run_id", in.RunID, "attempt", in.Attempt, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
}

// panicWatch is SDK middleware that logs and counts a panic the SDK
// recovers in a function's handler (it fails the attempt).
type panicWatch struct {
	middleware.BaseMiddleware
	r      *Registry
	tenant string
}

// OnPanic logs and counts the panic.
func (p *panicWatch) OnPanic(_ context.Context, call middleware.CallContext, recovered any, stack string) {
	p.r.metrics.panics.Inc()
	p.r.opts.Logger.Error("panic recovered in a function", "tenant", p.tenant, "function", call.FunctionOpts.ID,
		"run_id", call.RunID, "attempt", call.Attempt, "panic", fmt.Sprint(recovered), "stack", stack)
}

// Recover returns next with any panic in it recovered, logged with the
// request's tenant and function (for an Inngest call) and counted in
// tasksync_panics_total; the client gets a 500. The daemon wraps its
// whole handler chain in it. http.ErrAbortHandler, which aborts a
// response on purpose, goes on.
func (r *Registry) Recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			r.metrics.panics.Inc()
			tenant, _ := strings.CutPrefix(req.URL.Path, ServePath)
			if tenant == req.URL.Path {
				tenant = ""
			}
			r.opts.Logger.Error("panic recovered serving HTTP", "method", req.Method, "path", req.URL.Path, "tenant", tenant,
				"function", req.URL.Query().Get("fnId"), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
		}()
		next.ServeHTTP(w, req)
	})
}

// finalUnlessInterrupted marks an expression's error final
// (reconciler.Final) unless the evaluation was cut short because the
// invocation ended: evaluated again on the same event and steps, it
// fails the same way.
func finalUnlessInterrupted(err error) error {
	var ee *expr.Error
	if errors.As(err, &ee) && ee.Interrupted() {
		return err
	}
	return reconciler.Final(err)
}
