package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// RunInput is what the engine passes to one attempt of a run.
type RunInput struct {
	RunID   string         // the engine's run id
	Attempt int            // 0 for the first attempt
	Event   map[string]any // the triggering event: name, data, ts, ...
	// ScheduledFor is the fire of the definition's schedule the run is
	// for (ScheduledFire); zero for a run of an event or started by hand.
	ScheduledFor time.Time
	// CatchUp marks a run tasksync started for a fire that had been
	// missed (the definition's catch-up policy).
	CatchUp bool
}

// ManualRunEvent is the event that starts one run of a definition now
// (tasksync trigger): every function also listens for it, guarded by its
// tenant and code. Its data names the tenant (tenant_id), the code and
// the applied version the caller asked for (hash), beside the caller's
// own fields, which the run reads as event.data.
const ManualRunEvent = "tasksync/run"

// InvokedEvent is the event Inngest starts a function with when it is
// invoked directly, as its UI's Invoke button does: a manual run too,
// whose data must name the version as ManualRunEvent's does.
const InvokedEvent = "inngest/function.invoked"

// Manual reports whether the run was started by hand: by ManualRunEvent
// or by a direct invocation (InvokedEvent).
func (in RunInput) Manual() bool {
	name, _ := in.Event["name"].(string)
	return IsManualEvent(name)
}

// IsManualEvent reports whether an event of this name starts a manual run.
func IsManualEvent(name string) bool { return name == ManualRunEvent || name == InvokedEvent }

// CheckManual returns an error wrapping ErrStale when in is a manual run
// whose event names another version than hash, the applied version of
// its definition (or, while the store cannot be reached, the version this
// replica serves): a manual run runs the version its caller saw, and an
// event for a retired, deactivated or changed definition runs nothing.
func CheckManual(in RunInput, code, hash string) error {
	if !in.Manual() {
		return nil
	}
	data, _ := in.Event["data"].(map[string]any)
	asked, _ := data["hash"].(string)
	// The messages name no version: whoever posted the event learns
	// nothing from the refusal (the status API shows the applied one).
	switch {
	case asked == "":
		return fmt.Errorf("%w: the manual run of %s names no version (data.hash); see the status API for the applied one", ErrStale, code)
	case asked != hash:
		return fmt.Errorf("%w: the manual run of %s names another version than the applied one; see the status API", ErrStale, code)
	}
	return nil
}

// RunStatus is the state of a run attempt, as root_task_runs records it.
type RunStatus string

// The run statuses.
const (
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
)

// AppliedRef is the applied version of a definition a run belongs to. ID
// and Revision are zero in a ref made while the store could not be
// reached (ServedRef): Tenant, Code and Hash then name the version.
type AppliedRef struct {
	ID       int64
	Revision int64
	Hash     string
	Tenant   string
	Code     string
	// AppliedAt is when this version was applied; zero in a ServedRef.
	AppliedAt time.Time
}

// ServedRef is the ref of the version def this replica serves, for a run
// executed while the store cannot be reached.
func ServedRef(tenant string, def Definition) AppliedRef {
	return AppliedRef{Tenant: tenant, Code: def.Metadata.Code, Hash: def.Hash}
}

// RunRecorder keeps run records (store.Store).
type RunRecorder interface {
	// Current returns the live applied version of tenant/code; ok is false
	// when it is retired or unknown.
	Current(ctx context.Context, tenant, code string) (ref AppliedRef, ok bool, err error)
	// AppliedDefinition returns the live applied version of tenant/code itself.
	AppliedDefinition(ctx context.Context, tenant, code string) (def Definition, ok bool, err error)
	// StartRun records an attempt as running, to be ended by deadline
	// (the leader closes it as abandoned some grace after), and returns
	// its record id. Earlier attempts of the run still running are closed
	// as abandoned: the engine retries an attempt whose replica stopped.
	StartRun(ctx context.Context, ref AppliedRef, in RunInput, deadline time.Time) (int64, error)
	// RanBefore reports whether the definition's version has a run under
	// another run id: a one-shot runs once.
	RanBefore(ctx context.Context, ref AppliedRef, runID string) (bool, error)
	// FinishRun records an attempt's outcome.
	FinishRun(ctx context.Context, ref AppliedRef, runID int64, end AttemptEnd) error
}

// AttemptEnd is how a task's attempt ended.
type AttemptEnd struct {
	Status RunStatus // RunSucceeded or RunFailed
	Took   time.Duration
	Error  string
	// Output is the action's output as a JSON value (OutputJSON); nil
	// for none.
	Output json.RawMessage
	// Final marks the run's last attempt: it succeeded, or no retry
	// follows (the retries are spent, or the error is one no retry can
	// cure).
	Final bool
}

// ErrNoRetry marks an error that no retry can cure: the attempt it ends
// is the run's final one.
var ErrNoRetry = errors.New("a retry cannot succeed")

// ErrAbandoned is the error of an attempt closed because the replica
// running it stopped before recording how it ended.
var ErrAbandoned = errors.New("abandoned: the replica running it stopped before it ended")

// ErrRetired is the error of a workflow attempt closed because its
// definition was retired while the run was in flight: the run's next
// call is refused, so the attempt cannot go on.
var ErrRetired = errors.New("stopped: the definition was retired")

// finalAttempt reports whether the attempt in of def's run, ended by err,
// is the run's last: it succeeded, its retries are spent, or err is one no
// retry can cure.
func finalAttempt(def Definition, in RunInput, err error) bool {
	return err == nil || in.Attempt >= def.Spec.Retries || errors.Is(err, ErrNoRetry)
}

// AttemptTimeout bounds how long one attempt of def's task action may
// take: its api_call or python_script timeout (the defaults when unset).
func AttemptTimeout(def Definition) time.Duration {
	if c := def.Spec.Config; c != nil {
		switch {
		case c.APICall != nil:
			return timeoutOr(c.APICall.Timeout, DefaultAPICallTimeout)
		case c.PythonScript != nil:
			return timeoutOr(c.PythonScript.Timeout, DefaultPythonTimeout)
		}
	}
	return time.Duration(DefaultAPICallTimeout)
}

func timeoutOr(d, def Duration) time.Duration {
	if d > 0 {
		return time.Duration(d)
	}
	return time.Duration(def)
}

// Actions perform a task's action (executor adapters). Their errors and
// outputs are already redacted of secret values.
type Actions interface {
	APICall(ctx context.Context, tenant string, call APICall, event map[string]any) (output any, err error)
	PythonScript(ctx context.Context, tenant string, py PythonScript, event map[string]any) (output any, err error)
	// StepAPICall and StepPythonScript perform a workflow step's action,
	// whose templates may also read the earlier steps' outputs.
	StepAPICall(ctx context.Context, tenant string, call APICall, event, steps map[string]any) (output any, err error)
	StepPythonScript(ctx context.Context, tenant string, py PythonScript, event, steps map[string]any) (output any, err error)
}

// ErrStale means a run belongs to a definition that was retired or changed
// since its function was registered; it does not execute.
var ErrStale = errors.New("the definition was retired or changed since this run was scheduled")

// ErrAlreadyRan means a one-shot's version already ran under another run
// (or, as ErrFireRan, a scheduled fire did).
var ErrAlreadyRan = errors.New("this one-shot already ran")

// ErrFireRan means a cron's or interval's fire already has its run: it
// wraps ErrAlreadyRan.
var ErrFireRan error = fireRanError{}

type fireRanError struct{}

func (fireRanError) Error() string { return "this fire already ran" }
func (fireRanError) Unwrap() error { return ErrAlreadyRan }

// TaskRunner executes ScheduledTask runs: it checks that the run belongs
// to the applied version, records the attempt, performs the action and
// records the outcome.
type TaskRunner struct {
	Records RunRecorder
	Actions Actions
	// OutputLimit caps the output stored with a run; default 64 KiB.
	OutputLimit int
	// Spool keeps the records of runs executed while the store cannot be
	// reached, from the version this replica serves; nil: such a run fails
	// without executing.
	Spool *RunSpool
	// StoreTimeout bounds each store call of a run; a call that takes
	// longer counts as the store being unreachable. Default 10s.
	StoreTimeout time.Duration
}

// storeCtx bounds one store call of a run.
func (r *TaskRunner) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := r.StoreTimeout
	if d <= 0 {
		d = 10 * time.Second
	}
	return context.WithTimeout(ctx, d)
}

// unreachable reports whether err, from a store call under ctx, means the
// store cannot be reached (and not that ctx itself ended) while a spool
// can keep the run's records.
func (r *TaskRunner) unreachable(ctx context.Context, err error) bool {
	if r.Spool == nil || ctx.Err() != nil {
		return false
	}
	return errors.Is(err, ErrStoreUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// current returns the applied version ref of served, or ErrStale when a
// run of served may not execute it.
func (r *TaskRunner) current(ctx context.Context, tenant string, served Definition, ref AppliedRef) (Definition, error) {
	if served.Spec.Trigger.Type() == TriggerDate {
		return served, ErrStale
	}
	def, ok, err := r.Records.AppliedDefinition(ctx, tenant, served.Metadata.Code)
	if err != nil {
		return served, fmt.Errorf("look up the applied definition: %w", err)
	}
	if !ok || def.Hash != ref.Hash || def.Kind != served.Kind || !def.Spec.Active || def.Spec.Trigger.Type() == TriggerDate {
		return served, ErrStale
	}
	return def, nil
}

// resolve checks that a run of the served def may execute and returns the
// version it executes with its ref.
func (r *TaskRunner) resolve(ctx context.Context, tenant string, def Definition, in RunInput) (Definition, AppliedRef, error) {
	sctx, cancel := r.storeCtx(ctx)
	defer cancel()
	ref, ok, err := r.Records.Current(sctx, tenant, def.Metadata.Code)
	if err != nil {
		return def, ref, fmt.Errorf("look up the applied definition: %w", err)
	}
	if !ok {
		return def, ref, ErrStale
	}
	if err := CheckManual(in, def.Metadata.Code, ref.Hash); err != nil {
		return def, ref, err
	}
	if ref.Hash != def.Hash {
		// This replica serves another version than the applied one: a
		// follower between the leader's apply and its own reload. A
		// scheduled or event run executes the applied version, as the
		// leader would; a one-shot's run belongs to its version only.
		if def, err = r.current(sctx, tenant, def, ref); err != nil {
			return def, ref, err
		}
	}
	if in.Manual() {
		// Run now: a one-shot's time and its own run do not apply.
		return def, ref, nil
	}
	if err := oneShotFor(def, in); err != nil {
		return def, ref, err
	}
	if err := oneShotInTime(def, in, ref.AppliedAt, time.Now()); err != nil {
		return def, ref, err
	}
	if err := CheckFire(def.Spec.Trigger, def.Hash, in, time.Now()); err != nil {
		return def, ref, err
	}
	if err := FireAfterApply(in, ref.AppliedAt); err != nil {
		return def, ref, err
	}
	if fr, ok := r.Records.(FireRecorder); ok && !in.ScheduledFor.IsZero() && in.Attempt == 0 {
		ran, err := fr.RanFor(sctx, ref, in.ScheduledFor, in.RunID)
		if err != nil {
			return def, ref, fmt.Errorf("look up earlier runs: %w", err)
		}
		if ran {
			return def, ref, fmt.Errorf("%w: a run for the fire at %s is recorded already", ErrFireRan, in.ScheduledFor.UTC().Format(time.RFC3339))
		}
	}
	if def.Spec.Trigger.Type() == TriggerDate {
		ran, err := r.Records.RanBefore(sctx, ref, in.RunID)
		if err != nil {
			return def, ref, fmt.Errorf("look up earlier runs: %w", err)
		}
		if ran {
			return def, ref, ErrAlreadyRan
		}
	}
	return def, ref, nil
}

// FireRecorder is the RunRecorder's look-up of runs by their fire
// (store.Store): the runner starts one run per fire.
type FireRecorder interface {
	// RanFor reports whether the definition has a run for the fire at
	// under another run id.
	RanFor(ctx context.Context, ref AppliedRef, at time.Time, runID string) (bool, error)
}

// FireClaimer claims a scheduled fire for one run, atomically
// (store.Store): a workflow's first call claims its fire before any of
// its steps runs (a task's StartRun claims it too).
type FireClaimer interface {
	// FireHolder returns the run holding the claim on the definition's
	// fire at; ok is false when no run has claimed it.
	FireHolder(ctx context.Context, ref AppliedRef, at time.Time) (runID string, ok bool, err error)
	// ClaimFire claims the fire at for runID and returns the run that
	// holds the claim: runID, unless another run claimed it first.
	ClaimFire(ctx context.Context, ref AppliedRef, at time.Time, runID string) (holder string, err error)
}

// ManualClaimer claims a manual run's event for one run, atomically
// (store.Store): a workflow's every call claims it (a task's StartRun
// claims it too), and only the run holding it goes on.
type ManualClaimer interface {
	// ClaimManual claims the manual run's event of nonce
	// (RunInput.ManualNonce) for runID and returns the run that holds
	// the claim: runID, unless another run claimed it first.
	ClaimManual(ctx context.Context, nonce, runID string) (holder string, err error)
}

// CheckWorkflowFire checks a call of a workflow's run against the fire it
// is for, as the task runner checks a task's run: on the run's first call
// (no run holds the fire yet) the fire must be due at now, within its
// grace or catch-up policy, not from before the version was applied, and
// without a run already; the call then claims the fire for its run. A
// later call of the run that holds the fire checks only the version and
// the instant (it may come long after, past a sleep); a call of another
// run for the same fire is refused with ErrFireRan. A manual run's every
// call claims its event (ManualClaimer); a call of another run of the
// same event is refused with ErrManualRan. Without the store
// (ref from ServedRef) only the version and the instant are checked.
func CheckWorkflowFire(ctx context.Context, rec RunRecorder, t Trigger, ref AppliedRef, in RunInput, now time.Time) error {
	if s, ok := rec.(*spoolingRecorder); ok {
		rec = s.RunRecorder
	}
	if mc, ok := rec.(ManualClaimer); ok && ref.ID != 0 {
		if nonce := in.ManualNonce(); nonce != "" {
			holder, err := mc.ClaimManual(ctx, nonce, in.RunID)
			if err != nil {
				return fmt.Errorf("claim the manual run's event: %w", err)
			}
			if holder != in.RunID {
				return ErrManualRan
			}
		}
	}
	fc, ok := rec.(FireClaimer)
	if in.ScheduledFor.IsZero() || !ok || ref.ID == 0 {
		return CheckFire(t, ref.Hash, in, time.Time{})
	}
	holder, held, err := fc.FireHolder(ctx, ref, in.ScheduledFor)
	if err != nil {
		return fmt.Errorf("look up the fire's run: %w", err)
	}
	ranErr := fmt.Errorf("%w: a run for the fire at %s is recorded already", ErrFireRan, in.ScheduledFor.UTC().Format(time.RFC3339))
	switch {
	case held && holder != in.RunID:
		return ranErr
	case held:
		return CheckFire(t, ref.Hash, in, time.Time{})
	}
	if err := CheckFire(t, ref.Hash, in, now); err != nil {
		return err
	}
	if err := FireAfterApply(in, ref.AppliedAt); err != nil {
		return err
	}
	if fr, ok := rec.(FireRecorder); ok {
		ran, err := fr.RanFor(ctx, ref, in.ScheduledFor, in.RunID)
		if err != nil {
			return fmt.Errorf("look up earlier runs: %w", err)
		}
		if ran {
			return ranErr
		}
	}
	if holder, err = fc.ClaimFire(ctx, ref, in.ScheduledFor, in.RunID); err != nil {
		return fmt.Errorf("claim the fire: %w", err)
	}
	if holder != in.RunID {
		return ranErr
	}
	return nil
}

// CheckFire returns an error wrapping ErrStale when a scheduled run of
// the version of trigger t with hash may not execute at now. A fire event
// (FireEventName), which anyone holding the event key could post, must
// name this version and one of its fires, not yet to come (beyond
// OneShotSkew); a catch-up needs a latest or all policy and a fire within
// the window. Any scheduled run's first attempt (a cron's too) must start
// within the missed-fire grace (and the cron's jitter) of its fire: a
// later one was counted missed, and the catch-up policy decides what runs
// for it (a Kubernetes CronJob's startingDeadlineSeconds). A zero now
// checks only the version and the instant (a workflow's later
// invocations). Other events pass.
func CheckFire(t Trigger, hash string, in RunInput, now time.Time) error {
	name, _ := in.Event["name"].(string)
	if name != FireEventName && name != CronEventName {
		return nil
	}
	at, catchUp, ok := ScheduledFire(t, in.Event)
	if name == FireEventName {
		data, _ := in.Event["data"].(map[string]any)
		if h, _ := data["hash"].(string); h != hash {
			return fmt.Errorf("%w: the fire event names another version", ErrStale)
		}
		if !ok {
			return fmt.Errorf("%w: the fire event names no fire of this schedule", ErrStale)
		}
	}
	if !ok || now.IsZero() {
		return nil
	}
	switch {
	case at.After(now.Add(OneShotSkew)):
		return fmt.Errorf("%w: the fire at %s is not due yet", ErrStale, at.UTC().Format(time.RFC3339))
	case catchUp && (t.CatchUp == "" || t.CatchUp == CatchUpSkip):
		return fmt.Errorf("%w: catch-up runs are off (catchup: skip)", ErrStale)
	case catchUp && now.Sub(at) > t.Window()+missedFireGrace:
		return fmt.Errorf("%w: the fire at %s is older than the catch-up window", ErrStale, at.UTC().Format(time.RFC3339))
	case !catchUp && in.Attempt == 0 && now.Sub(at) > missedFireGrace+time.Duration(t.Jitter):
		return fmt.Errorf("%w: the fire at %s is more than %s late; it counts as missed", ErrStale, at.UTC().Format(time.RFC3339), missedFireGrace)
	}
	return nil
}

// FireAfterApply returns an error wrapping ErrStale when in is a fire
// event's run (FireEventName) for an instant before its version was
// applied at appliedAt (less OneShotSkew): tasksync sends fires of a
// version only after applying it. A zero appliedAt checks nothing.
func FireAfterApply(in RunInput, appliedAt time.Time) error {
	if name, _ := in.Event["name"].(string); name != FireEventName || in.ScheduledFor.IsZero() || appliedAt.IsZero() {
		return nil
	}
	if in.ScheduledFor.Before(appliedAt.Add(-OneShotSkew)) {
		return fmt.Errorf("%w: the fire at %s is from before this version was applied", ErrStale, in.ScheduledFor.UTC().Format(time.RFC3339))
	}
	return nil
}

// oneShotFor returns ErrStale when def is a one-shot and the run's event
// was sent for another version of it.
func oneShotFor(def Definition, in RunInput) error {
	if def.Spec.Trigger.Type() != TriggerDate {
		return nil
	}
	data, _ := in.Event["data"].(map[string]any)
	if h, _ := data["hash"].(string); h != def.Hash {
		return ErrStale
	}
	return nil
}

// OneShotSkew is how long before its `at` a one-shot's run may start:
// the clocks of tasksync's replicas and Inngest's may differ this much.
const OneShotSkew = time.Minute

// oneShotInTime returns an error wrapping ErrStale when def is a one-shot
// whose run must not execute at now: before its time (less OneShotSkew),
// or for a version applied at or after its time (expired: it fires
// nothing). Without appliedAt (the store cannot be reached), a first
// attempt more than missedFireGrace after its time is refused too:
// Inngest starts a one-shot's run at its time, so such a run comes from
// an event sent by someone else, and the store cannot say whether the
// version had expired. The tenant's event senders can post the due event
// with the one-shot's code and hash (the status API shows both), so the
// run itself checks its time.
func oneShotInTime(def Definition, in RunInput, appliedAt, now time.Time) error {
	if def.Spec.Trigger.Type() != TriggerDate || def.Spec.Trigger.At == nil {
		return nil
	}
	at := *def.Spec.Trigger.At
	switch {
	case now.Before(at.Add(-OneShotSkew)):
		return fmt.Errorf("%w: one-shot %s is due at %s, not before", ErrStale, def.Metadata.Code, at.UTC().Format(time.RFC3339))
	case !appliedAt.IsZero() && !at.After(appliedAt):
		return fmt.Errorf("%w: one-shot %s expired: its time %s had passed when this version was applied", ErrStale,
			def.Metadata.Code, at.UTC().Format(time.RFC3339))
	case appliedAt.IsZero() && in.Attempt == 0 && now.Sub(at) > missedFireGrace:
		return fmt.Errorf("%w: one-shot %s was due at %s; a first run this late is not its own, and the database cannot be reached to check it",
			ErrStale, def.Metadata.Code, at.UTC().Format(time.RFC3339))
	}
	return nil
}

// Run executes one attempt of def's run. When the store cannot be reached
// and the runner has a spool, the attempt executes the version this
// replica serves (def) and its records go to the spool, to be written
// when the store answers again. A one-shot then runs without the check
// for an earlier run: Inngest's event id already makes its event start
// one run.
func (r *TaskRunner) Run(ctx context.Context, tenant string, def Definition, in RunInput) (any, error) {
	served := def
	def, ref, err := r.resolve(ctx, tenant, def, in)
	spooled := false
	if err != nil {
		if !r.unreachable(ctx, err) {
			return nil, err
		}
		def, ref, spooled = served, ServedRef(tenant, served), true
		if err := CheckManual(in, def.Metadata.Code, def.Hash); err != nil {
			return nil, err
		}
		if !in.Manual() {
			if err := oneShotFor(def, in); err != nil {
				return nil, err
			}
			if err := oneShotInTime(def, in, time.Time{}, time.Now()); err != nil {
				return nil, err
			}
		}
		if err := CheckFire(def.Spec.Trigger, def.Hash, in, time.Now()); err != nil {
			return nil, err
		}
	}
	ref.Tenant, ref.Code = tenant, def.Metadata.Code
	start := time.Now()
	deadline := start.Add(AttemptTimeout(def))
	rec := SpooledRun{Ref: ref, RunID: in.RunID, Attempt: in.Attempt, Status: RunRunning, StartedAt: start, Deadline: deadline,
		ScheduledFor: in.ScheduledFor, CatchUp: in.CatchUp, Manual: in.Manual()}
	var id int64
	if !spooled && r.Spool.Len() == 0 {
		sctx, cancel := r.storeCtx(ctx)
		id, err = r.Records.StartRun(sctx, ref, in, deadline)
		cancel()
		if err != nil && !r.unreachable(ctx, err) {
			return nil, fmt.Errorf("record the run: %w", err)
		}
		spooled = err != nil
	} else {
		spooled = true
	}
	if spooled {
		r.Spool.Add(rec)
	}
	var out any
	switch {
	case def.Kind != KindScheduledTask || def.Spec.Config == nil:
		err = Final(fmt.Errorf("%s %s cannot run as a task", def.Kind, def.Metadata.Code))
	case def.Spec.Config.APICall != nil:
		out, err = r.actions().APICall(ctx, tenant, *def.Spec.Config.APICall, in.Event)
	case def.Spec.Config.PythonScript != nil:
		out, err = r.actions().PythonScript(ctx, tenant, *def.Spec.Config.PythonScript, in.Event)
	}
	rec.Status, rec.Error = RunSucceeded, ""
	if err != nil {
		rec.Status, rec.Error = RunFailed, err.Error()
	}
	limit := r.OutputLimit
	if limit <= 0 {
		limit = MaxResponseCaptureBytes
	}
	rec.Output = OutputJSON(out, limit)
	rec.Final = finalAttempt(def, in, err)
	rec.FinishedAt = time.Now()
	if !spooled && r.Spool.Len() == 0 {
		sctx, cancel := r.storeCtx(context.WithoutCancel(ctx))
		ferr := r.Records.FinishRun(sctx, ref, id, AttemptEnd{Status: rec.Status, Took: rec.FinishedAt.Sub(start),
			Error: rec.Error, Output: rec.Output, Final: rec.Final})
		cancel()
		if ferr == nil {
			return out, err
		}
		if !r.unreachable(context.WithoutCancel(ctx), ferr) {
			return out, errors.Join(err, fmt.Errorf("record the outcome: %w", ferr))
		}
	}
	r.Spool.Add(rec)
	return out, err
}

// OutputJSON renders an action's or a step's output for its run record as
// a JSON value of at most about limit bytes: the output itself, or, when
// its encoding is longer, {"truncated": true, "bytes": <its length>,
// "head": "<its first bytes, as text>"}. nil stays nil.
func OutputJSON(v any, limit int) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := jsonMarshal(v)
	if err != nil {
		b, _ = jsonMarshal(fmt.Sprint(v))
	}
	if len(b) <= limit {
		return b
	}
	head := b[:max(0, limit-64)]
	for len(head) > 0 && !utf8.Valid(head) {
		head = head[:len(head)-1]
	}
	t, _ := jsonMarshal(map[string]any{"truncated": true, "bytes": len(b), "head": string(head)})
	return t
}

// StepActions are the actions workflow steps use: the runner's, each
// panic recovered as a *PanicError.
func (r *TaskRunner) StepActions() Actions { return r.actions() }

// RunRecords keeps the runner's run records: with a spool, a workflow's
// records go to the spool while the store cannot be reached (or while
// the spool still holds records, to keep their order).
func (r *TaskRunner) RunRecords() RunRecorder {
	if r.Spool == nil || r.Records == nil {
		return r.Records
	}
	return &spoolingRecorder{RunRecorder: r.Records, runner: r}
}

// spoolingRecorder is a RunRecorder whose workflow records fall back to
// the runner's spool.
type spoolingRecorder struct {
	RunRecorder
	runner *TaskRunner
}

// Current bounds the look-up like the runner's own.
func (s *spoolingRecorder) Current(ctx context.Context, tenant, code string) (AppliedRef, bool, error) {
	sctx, cancel := s.runner.storeCtx(ctx)
	defer cancel()
	ref, ok, err := s.RunRecorder.Current(sctx, tenant, code)
	if err != nil && s.runner.unreachable(ctx, err) && !errors.Is(err, ErrStoreUnavailable) {
		err = fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	return ref, ok, err
}

// RecordWorkflowRun records in the store, or in the spool when the store
// cannot be reached or the spool is not empty.
func (s *spoolingRecorder) RecordWorkflowRun(ctx context.Context, ref AppliedRef, in RunInput, a WorkflowAttempt) (time.Time, error) {
	wr, ok := s.RunRecorder.(WorkflowRecorder)
	if !ok {
		return time.Time{}, nil
	}
	if s.runner.Spool.Len() == 0 {
		sctx, cancel := s.runner.storeCtx(ctx)
		started, err := wr.RecordWorkflowRun(sctx, ref, in, a)
		cancel()
		if err == nil || !s.runner.unreachable(ctx, err) {
			return started, err
		}
	}
	rec := SpooledRun{Ref: ref, RunID: in.RunID, Attempt: in.Attempt, Status: a.Status, StartedAt: time.Now(),
		Error: a.Error, Workflow: true, Steps: append([]StepOutcome(nil), a.Steps...), FailedStep: a.FailedStep,
		Final: a.Final, Deadline: a.Deadline, ScheduledFor: in.ScheduledFor, CatchUp: in.CatchUp, Manual: in.Manual()}
	if a.Status != RunRunning {
		rec.FinishedAt = rec.StartedAt
	}
	s.runner.Spool.Add(rec)
	return time.Time{}, nil
}

// StopRetiredRun closes the run's open attempt in the store; while the
// store cannot be reached the leader closes it later, as abandoned.
func (s *spoolingRecorder) StopRetiredRun(ctx context.Context, tenant, code, runID string) error {
	wr, ok := s.RunRecorder.(WorkflowRecorder)
	if !ok {
		return nil
	}
	sctx, cancel := s.runner.storeCtx(ctx)
	defer cancel()
	return wr.StopRetiredRun(sctx, tenant, code, runID)
}

// WorkflowRecorder records workflow runs (store.Store).
type WorkflowRecorder interface {
	// RecordWorkflowRun records what one invocation of a workflow run saw
	// on the run's open attempt. A workflow's attempts are numbered by the
	// store, not by the engine (whose counter is per step): an attempt
	// ends when a step fails, and the next invocation (the step's retry)
	// opens the next attempt. An invocation that retries a step
	// (in.Attempt > 0) while the open attempt still runs closes that one
	// as abandoned first. Once an attempt is final, a failure that is
	// final too changes nothing: the engine calls the run once more with
	// the failed step's memoized error. started is when the attempt the
	// record went on started; zero when not known (the record was kept
	// for later, or changed nothing).
	RecordWorkflowRun(ctx context.Context, ref AppliedRef, in RunInput, a WorkflowAttempt) (started time.Time, err error)
	// StopRetiredRun closes the run's attempt still running, if any, as a
	// final failure with ErrRetired: tenant's definition code was retired
	// and the run's call was refused as stale.
	StopRetiredRun(ctx context.Context, tenant, code, runID string) error
}

// WorkflowAttempt is a workflow attempt as one invocation records it.
type WorkflowAttempt struct {
	Status RunStatus
	Error  string
	// FailedStep is the id of the step that failed, when one did.
	FailedStep string
	// Steps are the outcomes of the run's steps so far.
	Steps []StepOutcome
	Final bool
	// Deadline is when a running attempt must have recorded again (the
	// leader closes it as abandoned some grace after).
	Deadline time.Time
	// Manual marks a run started by hand (RunInput.Manual).
	Manual bool
}

// StepOutcome is what became of one workflow step in a run.
type StepOutcome struct {
	ID     string `json:"id"`
	Status string `json:"status"` // completed, skipped, timed_out, failed
	// Output is the step's output as a JSON value (OutputJSON).
	Output json.RawMessage `json:"output,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// WorkflowStepBound is how long a workflow attempt may run without
// recording again: the longest timeout among its api_call and
// python_script steps (the step the next invocation runs may be any of
// them), plus a minute for send_event and the engine's own calls.
// An attempt that stops at a sleep, sleep_until or wait_for_event step
// may also wait that long first (WorkflowDeadline).
func WorkflowStepBound(def Definition) time.Duration {
	bound := time.Duration(0)
	for _, st := range def.Spec.Steps {
		switch {
		case st.APICall != nil:
			bound = max(bound, timeoutOr(st.APICall.Timeout, DefaultAPICallTimeout))
		case st.PythonScript != nil:
			bound = max(bound, timeoutOr(st.PythonScript.Timeout, DefaultPythonTimeout))
		}
	}
	return bound + time.Minute
}

// WorkflowDeadline is when a workflow attempt that recorded at now must
// record again: WorkflowStepBound after now, or after resume when it
// waits (a sleep's end, a sleep_until's time, a wait_for_event's
// timeout) until a later time.
func WorkflowDeadline(def Definition, now, resume time.Time) time.Time {
	if resume.Before(now) {
		resume = now
	}
	return resume.Add(WorkflowStepBound(def))
}
