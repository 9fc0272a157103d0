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

// attemptStatus is how an attempt that ended with err (nil: it
// succeeded) is counted and logged: succeeded, failed when it was the
// run's last (final), else retrying.
func attemptStatus(err error, final bool) string {
	switch {
	case err == nil:
		return string(reconciler.RunSucceeded)
	case final:
		return string(reconciler.RunFailed)
	}
	return attemptRetrying
}

// attemptEnded tells the end of an attempt of tenant's definition code
// that started at started and ended with err (nil: it succeeded), final
// when it was its run's last: it is counted in the attempt metrics (and
// its run in the run metrics when final), its duration observed, a panic
// its action recovered logged, and one `run` line logged, at WARN when it
// failed. failedStep is a workflow's step that failed.
func (r *Registry) attemptEnded(tenant, code, kind string, in reconciler.RunInput, err error, final bool, started time.Time, failedStep string) {
	status := attemptStatus(err, final)
	r.metrics.attempts.WithLabelValues(tenant, kind, status).Inc()
	if status != attemptRetrying {
		r.metrics.runs.WithLabelValues(tenant, kind, status).Inc()
	}
	took := time.Since(started)
	r.metrics.runDuration.WithLabelValues(tenant, kind).Observe(took.Seconds())
	r.actionPanicked(tenant, code, in, err)
	// Executors and the store redact secret values from their errors
	// before this.
	log := r.opts.Logger.With("tenant", tenant, "code", code, "run_id", in.RunID, "attempt", in.Attempt,
		"status", status, "final", err == nil || final, "duration", took.Round(time.Millisecond))
	if failedStep != "" {
		log = log.With("failed_step", failedStep)
	}
	if err != nil {
		log.Warn("run", "err", err)
	} else {
		log.Info("run")
	}
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
