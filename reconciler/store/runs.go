package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/riveredge/tasksync/reconciler"
)

// abandonedText is the error of an attempt closed as abandoned.
var abandonedText = reconciler.ErrAbandoned.Error()

// lockTask locks a definition's row for the transaction: run records of
// one definition are written one transaction at a time, so that its last
// run, read back from them (refreshLastRun), is the newest.
func lockTask(ctx context.Context, tx pgx.Tx, taskID int64) error {
	_, err := tx.Exec(ctx, `select 1 from root_scheduled_tasks where id = $1 for no key update`, taskID)
	return err
}

// refreshLastRun sets a definition's last_run_at, last_run_status,
// last_error and is_running from its attempt rows: the newest row (by id,
// as the status API lists them) and whether any row runs. Every write of
// a run record calls it in its transaction, so that the columns and the
// rows agree in every snapshot.
func refreshLastRun(ctx context.Context, tx pgx.Tx, taskID int64) error {
	_, err := tx.Exec(ctx, `
		update root_scheduled_tasks d
		set is_running = exists (select 1 from root_task_runs r where r.task_id = d.id and r.status = 'running'),
			last_run_at = lr.started_at, last_run_status = lr.status, last_error = lr.error
		from (select 1) one
		left join lateral (select started_at, status, error from root_task_runs r where r.task_id = $1 order by r.id desc limit 1) lr on true
		where d.id = $1`, taskID)
	return err
}

// StartRun records an attempt as running (idempotently: the engine may
// call an attempt twice), to end by deadline. Earlier attempts of the run
// still running are closed as abandoned (the engine retried them: their
// replica stopped), and none of them is final any more.
func (s *Store) StartRun(ctx context.Context, ref reconciler.AppliedRef, in reconciler.RunInput, deadline time.Time) (int64, error) {
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockTask(ctx, tx, ref.ID); err != nil {
			return err
		}
		if holder, _, err := claimFire(ctx, tx, ref.ID, in.ScheduledFor, in.RunID); err != nil {
			return err
		} else if holder != in.RunID {
			return fmt.Errorf("%w: a run for the fire at %s is recorded already", reconciler.ErrFireRan, in.ScheduledFor.UTC().Format(time.RFC3339))
		}
		if holder, err := claimManual(ctx, tx, in.ManualNonce(), in.RunID); err != nil {
			return err
		} else if holder != in.RunID {
			return reconciler.ErrManualRan
		}
		err := tx.QueryRow(ctx, `
			insert into root_task_runs (tenant_id, task_id, revision, inngest_run_id, attempt, status, deadline_at, manual)
			select tenant_id, id, $2, $3, $4, 'running', $5, $6 from root_scheduled_tasks where id = $1
			on conflict (task_id, inngest_run_id, attempt) do update set status = 'running', started_at = now(), finished_at = null,
				duration_ms = null, error = null, output = null, final = false, deadline_at = excluded.deadline_at
			returning id`, ref.ID, ref.Revision, in.RunID, in.Attempt, deadline, in.Manual()).Scan(&id)
		if err != nil {
			return err
		}
		if err := markFire(ctx, tx, ref.ID, in.RunID, in.ScheduledFor, in.CatchUp); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			update root_task_runs set final = false,
				status = case when status = 'running' then 'failed' else status end,
				error = case when status = 'running' then $3 else error end,
				finished_at = case when status = 'running' then now() else finished_at end,
				duration_ms = case when status = 'running' then (extract(epoch from now() - started_at) * 1000)::bigint else duration_ms end
			where task_id = $4 and inngest_run_id = $1 and attempt < $2 and (status = 'running' or final)`, in.RunID, in.Attempt, abandonedText, ref.ID)
		if err != nil {
			return err
		}
		return refreshLastRun(ctx, tx, ref.ID)
	})
	if err != nil {
		return 0, fmt.Errorf("start run: %w", runErr(err))
	}
	return id, nil
}

// FinishRun records an attempt's outcome on the run and its definition.
func (s *Store) FinishRun(ctx context.Context, ref reconciler.AppliedRef, runID int64, end reconciler.AttemptEnd) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockTask(ctx, tx, ref.ID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			update root_task_runs set status = $2, finished_at = now(), duration_ms = $3, error = nullif($4, ''), output = $5, final = $6
			where id = $1`, runID, string(end.Status), end.Took.Milliseconds(), clean(end.Error), jsonValue(end.Output), end.Final)
		if err != nil {
			return err
		}
		return refreshLastRun(ctx, tx, ref.ID)
	})
	if err != nil {
		return fmt.Errorf("finish run: %w", runErr(err))
	}
	return nil
}

// jsonValue is a JSON value for a jsonb parameter: nil for none, its NUL
// characters (which jsonb cannot hold) escaped away.
func jsonValue(v json.RawMessage) any {
	if len(v) == 0 {
		return nil
	}
	return strings.ReplaceAll(string(v), `\u0000`, `\ufffd`)
}

// clean removes NUL bytes, which PostgreSQL text cannot hold.
func clean(s string) string { return strings.ReplaceAll(s, "\x00", "") }

// markFire records on a run's attempts the fire the run is for; a run for
// no fire (at zero) records nothing.
func markFire(ctx context.Context, tx pgx.Tx, taskID int64, runID string, at time.Time, catchUp bool) error {
	if at.IsZero() {
		return nil
	}
	_, err := tx.Exec(ctx, `update root_task_runs set scheduled_for = $3, catch_up = $4
		where task_id = $1 and inngest_run_id = $2 and scheduled_for is null`, taskID, runID, at, catchUp)
	return err
}

// claimFire claims the fire at of task for run runID (a run for no fire,
// a zero at, claims nothing and holds it) and returns the run holding the
// claim: runID unless another run claimed the fire first. fresh reports
// whether this call took the claim.
func claimFire(ctx context.Context, tx pgx.Tx, taskID int64, at time.Time, runID string) (holder string, fresh bool, err error) {
	if at.IsZero() {
		return runID, false, nil
	}
	tag, err := tx.Exec(ctx, `insert into root_fire_claims (task_id, scheduled_for, inngest_run_id) values ($1, $2, $3)
		on conflict (task_id, scheduled_for) do nothing`, taskID, at, runID)
	if err != nil {
		return "", false, err
	}
	if tag.RowsAffected() == 1 {
		return runID, true, nil
	}
	err = tx.QueryRow(ctx, `select inngest_run_id from root_fire_claims where task_id = $1 and scheduled_for = $2`, taskID, at).Scan(&holder)
	return holder, false, err
}

// claimManual claims a manual run's event, by its nonce, for the run
// runID (no nonce, a run of another event, claims nothing and holds it)
// and returns the run holding the claim: runID unless another run of the
// same event claimed it first. Each attempt of the run claims it again,
// and holds it.
func claimManual(ctx context.Context, tx pgx.Tx, nonce, runID string) (holder string, err error) {
	if nonce == "" {
		return runID, nil
	}
	tag, err := tx.Exec(ctx, `insert into root_manual_claims (nonce, inngest_run_id) values ($1, $2)
		on conflict (nonce) do nothing`, clean(nonce), runID)
	if err != nil {
		return "", err
	}
	if tag.RowsAffected() == 1 {
		return runID, nil
	}
	err = tx.QueryRow(ctx, `select inngest_run_id from root_manual_claims where nonce = $1`, clean(nonce)).Scan(&holder)
	return holder, err
}

// ClaimManual claims the manual run's event of nonce for the run runID,
// at once (reconciler.ManualClaimer): holder is the run that holds the
// claim, runID unless another run of the event claimed it first.
func (s *Store) ClaimManual(ctx context.Context, nonce, runID string) (holder string, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		holder, err = claimManual(ctx, tx, nonce, runID)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("claim the manual run's event: %w", runErr(err))
	}
	return holder, nil
}

// ClaimFire claims the fire at of ref's definition for the run runID, at
// once (reconciler.FireClaimer): holder is the run that holds the claim,
// runID unless another run claimed it first.
func (s *Store) ClaimFire(ctx context.Context, ref reconciler.AppliedRef, at time.Time, runID string) (holder string, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		holder, _, err = claimFire(ctx, tx, ref.ID, at, runID)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("claim the fire: %w", runErr(err))
	}
	return holder, nil
}

// FireHolder returns the run that claimed the fire at of ref's
// definition; ok is false when none has (reconciler.FireClaimer).
func (s *Store) FireHolder(ctx context.Context, ref reconciler.AppliedRef, at time.Time) (runID string, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `select inngest_run_id from root_fire_claims where task_id = $1 and scheduled_for = $2`, ref.ID, at).Scan(&runID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("the fire's run: %w", runErr(err))
	}
	return runID, true, nil
}

// RanFor reports whether ref's definition has a run for the fire at under
// another run id (reconciler.FireRecorder).
func (s *Store) RanFor(ctx context.Context, ref reconciler.AppliedRef, at time.Time, runID string) (bool, error) {
	var ran bool
	err := s.pool.QueryRow(ctx, `select exists (select 1 from root_task_runs where task_id = $1 and scheduled_for = $2 and inngest_run_id <> $3)`,
		ref.ID, at, runID).Scan(&ran)
	if err != nil {
		return false, fmt.Errorf("earlier runs: %w", runErr(err))
	}
	return ran, nil
}

// RanBefore reports whether ref's version has a run under another run id;
// manual runs do not count.
func (s *Store) RanBefore(ctx context.Context, ref reconciler.AppliedRef, runID string) (bool, error) {
	var ran bool
	err := s.pool.QueryRow(ctx, `select exists (select 1 from root_task_runs where task_id = $1 and revision = $2 and inngest_run_id <> $3 and not manual)`,
		ref.ID, ref.Revision, runID).Scan(&ran)
	if err != nil {
		return false, fmt.Errorf("earlier runs: %w", runErr(err))
	}
	return ran, nil
}

// RecordWorkflowRun records what one invocation of a workflow run saw on
// the run's open attempt, numbering the run's attempts itself (see
// reconciler.WorkflowRecorder): the open attempt is the run's newest row
// while it runs; after it ended, the invocation opens the next one,
// unless both it and the record are final failures.
func (s *Store) RecordWorkflowRun(ctx context.Context, ref reconciler.AppliedRef, in reconciler.RunInput, a reconciler.WorkflowAttempt) (started time.Time, err error) {
	stepsJSON, err := stepsValue(a.Steps)
	if err != nil {
		return time.Time{}, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockTask(ctx, tx, ref.ID); err != nil {
			return err
		}
		a.Manual = a.Manual || in.Manual()
		started, err = recordWorkflowAttempt(ctx, tx, ref.ID, ref.Revision, in.RunID, in.Attempt, a, stepsJSON, time.Now())
		if err != nil {
			return err
		}
		return markFire(ctx, tx, ref.ID, in.RunID, in.ScheduledFor, in.CatchUp)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("record workflow run: %w", runErr(err))
	}
	return started, nil
}

// StopRetiredRun closes the attempt of tenant's run runID of definition
// code that is still running, if any, as a final failure with
// reconciler.ErrRetired (see reconciler.WorkflowRecorder).
func (s *Store) StopRetiredRun(ctx context.Context, tenant, code, runID string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			select distinct d.id from root_task_runs r join root_scheduled_tasks d on d.id = r.task_id join root_tenants t on t.id = d.tenant_id
			where t.code = $1 and d.code = $2 and r.inngest_run_id = $3 and r.status = 'running'`, tenant, code, runID)
		if err != nil {
			return err
		}
		tasks, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for _, task := range tasks {
			if err := lockTask(ctx, tx, task); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `update root_task_runs set status = 'failed', error = $3, final = true, finished_at = now(),
					duration_ms = (extract(epoch from now() - started_at) * 1000)::bigint
				where task_id = $1 and inngest_run_id = $2 and status = 'running'`, task, runID, reconciler.ErrRetired.Error())
			if err != nil {
				return err
			}
			if err := refreshLastRun(ctx, tx, task); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("close the retired definition's run %s: %w", runID, runErr(err))
	}
	return nil
}

// stepsValue encodes a workflow's step outcomes for the steps column.
func stepsValue(steps []reconciler.StepOutcome) (any, error) {
	if steps == nil {
		steps = []reconciler.StepOutcome{}
	}
	b, err := json.Marshal(steps)
	if err != nil {
		return nil, fmt.Errorf("encode the steps' outcomes: %w", err)
	}
	return jsonValue(b), nil
}

// recordWorkflowAttempt writes a workflow invocation's record at time at
// on the run's open attempt, in tx, which holds the definition's lock.
// revision 0 files it under the definition's current revision.
func recordWorkflowAttempt(ctx context.Context, tx pgx.Tx, taskID, revision int64, runID string, engineAttempt int,
	a reconciler.WorkflowAttempt, steps any, at time.Time) (started time.Time, err error) {
	var (
		rowID, attempt int64
		status         string
		final          bool
	)
	err = tx.QueryRow(ctx, `select id, attempt, status, final, started_at from root_task_runs where task_id = $1 and inngest_run_id = $2 order by attempt desc limit 1`, taskID, runID).
		Scan(&rowID, &attempt, &status, &final, &started)
	open := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, err
	}
	ended := a.Status != reconciler.RunRunning
	if open && final && a.Status == reconciler.RunFailed && a.Final {
		return time.Time{}, nil // the engine's call with the failed step's memoized error
	}
	if open && status == string(reconciler.RunRunning) && engineAttempt > 0 {
		// A retry of a step while the attempt that ran it still runs: that
		// attempt's replica stopped before recording how it ended.
		_, err := tx.Exec(ctx, `update root_task_runs set status = 'failed', error = $2, finished_at = $3,
				duration_ms = (extract(epoch from $3 - started_at) * 1000)::bigint
			where id = $1`, rowID, abandonedText, at)
		if err != nil {
			return time.Time{}, err
		}
		status = string(reconciler.RunFailed)
	}
	var deadline *time.Time
	if !a.Deadline.IsZero() {
		deadline = &a.Deadline
	}
	var finishedAt *time.Time
	if ended {
		finishedAt = &at
	}
	if open && status == string(reconciler.RunRunning) {
		_, err := tx.Exec(ctx, `update root_task_runs set status = $2, steps = $3, error = nullif($4, ''), failed_step = nullif($5, ''),
				final = $6, deadline_at = $7, finished_at = $8,
				duration_ms = case when $8::timestamptz is not null then (extract(epoch from $8::timestamptz - started_at) * 1000)::bigint end
			where id = $1`, rowID, string(a.Status), steps, clean(a.Error), a.FailedStep, a.Final, deadline, finishedAt)
		if err != nil {
			return time.Time{}, err
		}
		return started, refreshLastRun(ctx, tx, taskID)
	}
	next := int64(0)
	if open {
		next = attempt + 1
		if _, err := tx.Exec(ctx, `update root_task_runs set final = false where task_id = $1 and inngest_run_id = $2 and final`, taskID, runID); err != nil {
			return time.Time{}, err
		}
	}
	_, err = tx.Exec(ctx, `
		insert into root_task_runs (tenant_id, task_id, revision, inngest_run_id, attempt, status, started_at, steps, error, failed_step,
			final, deadline_at, finished_at, duration_ms, manual)
		select tenant_id, id, case when $2 > 0 then $2 else revision end, $3, $4, $5, $6, $7, nullif($8, ''), nullif($9, ''), $10, $11, $12,
			case when $12::timestamptz is not null then 0 end, $13
		from root_scheduled_tasks where id = $1`,
		taskID, revision, runID, next, string(a.Status), at, steps, clean(a.Error), a.FailedStep, a.Final, deadline, finishedAt, a.Manual)
	if err != nil {
		return time.Time{}, err
	}
	return at, refreshLastRun(ctx, tx, taskID)
}

// runErr redacts err and, when it is a connection error (the database
// refused or broke the connection, or is shutting down), marks it with
// reconciler.ErrStoreUnavailable: a run then executes from the version
// its replica serves and spools its records.
func runErr(err error) error {
	if !connectionError(err) {
		return redact(err)
	}
	return unavailableError{redact(err)}
}

// unavailableError is a connection error that errors.Is
// reconciler.ErrStoreUnavailable, with the driver's message.
type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return e.err.Error() }
func (e unavailableError) Unwrap() []error { return []error{e.err, reconciler.ErrStoreUnavailable} }

// connectionError reports whether err means the database could not be
// reached, rather than an answer from it.
func connectionError(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-57P03: the server is
		// shutting down or starting; 53300: too many connections.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || pe.Code == "53300"
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || pgconn.SafeToRetry(err)
}

// WriteSpooledRun writes a run record kept while the database could not
// be reached, filed under the definition its ref names (by id, or else by
// tenant, code and hash: the version with that hash, or the live one, or
// the last retired one). A task's record is an upsert of the attempt (run
// id, attempt) with the times it carries; a workflow's goes on the run's
// open attempt as RecordWorkflowRun's would, at the time it was made. The
// definition's last run is then read back from its rows.
func (s *Store) WriteSpooledRun(ctx context.Context, rec reconciler.SpooledRun) error {
	var finished, deadline *time.Time
	if !rec.FinishedAt.IsZero() {
		finished = &rec.FinishedAt
	}
	if !rec.Deadline.IsZero() {
		deadline = &rec.Deadline
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var taskID int64
		err := tx.QueryRow(ctx, `
			select d.id from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id
			where ($1 > 0 and d.id = $1) or ($1 = 0 and t.code = $2 and d.code = $3)
			order by d.spec_hash = $4 desc, d.deleted_at is null desc, d.id desc limit 1
			for no key update of d`, rec.Ref.ID, rec.Ref.Tenant, rec.Ref.Code, rec.Ref.Hash).Scan(&taskID)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("no definition %s/%s to file it under", rec.Ref.Tenant, rec.Ref.Code)
		}
		if err != nil {
			return err
		}
		revision := rec.Ref.Revision
		if rec.Ref.ID == 0 {
			revision = 0 // the definition's current one
		}
		if rec.Workflow {
			steps, err := stepsValue(rec.Steps)
			if err != nil {
				return err
			}
			a := reconciler.WorkflowAttempt{Status: rec.Status, Error: rec.Error, FailedStep: rec.FailedStep, Final: rec.Final, Deadline: rec.Deadline,
				Manual: rec.Manual}
			if _, err = recordWorkflowAttempt(ctx, tx, taskID, revision, rec.RunID, rec.Attempt, a, steps, rec.StartedAt); err != nil {
				return err
			}
			return markFire(ctx, tx, taskID, rec.RunID, rec.ScheduledFor, rec.CatchUp)
		}
		_, err = tx.Exec(ctx, `
			insert into root_task_runs as r (tenant_id, task_id, revision, inngest_run_id, attempt, status, started_at, finished_at, duration_ms,
				error, output, final, deadline_at, manual)
			select tenant_id, id, case when $2 > 0 then $2 else revision end, $3, $4, $5, $6, $7,
				case when $7::timestamptz is not null then (extract(epoch from $7::timestamptz - $6::timestamptz) * 1000)::bigint end,
				nullif($8, ''), $9, $10, $11, $12
			from root_scheduled_tasks where id = $1
			on conflict (task_id, inngest_run_id, attempt) do update set status = excluded.status,
				started_at = case when excluded.finished_at is null then excluded.started_at else r.started_at end,
				finished_at = excluded.finished_at,
				duration_ms = case when excluded.finished_at is not null then
					(extract(epoch from excluded.finished_at - least(r.started_at, excluded.finished_at)) * 1000)::bigint end,
				error = excluded.error, output = coalesce(excluded.output, r.output), final = excluded.final,
				deadline_at = coalesce(excluded.deadline_at, r.deadline_at)`,
			taskID, revision, rec.RunID, rec.Attempt, string(rec.Status), rec.StartedAt, finished, clean(rec.Error), jsonValue(rec.Output),
			rec.Final, deadline, rec.Manual)
		if err != nil {
			return err
		}
		if err := markFire(ctx, tx, taskID, rec.RunID, rec.ScheduledFor, rec.CatchUp); err != nil {
			return err
		}
		if rec.Status == reconciler.RunRunning {
			// As StartRun: earlier attempts still running were abandoned.
			_, err = tx.Exec(ctx, `
				update root_task_runs set final = false,
					status = case when status = 'running' then 'failed' else status end,
					error = case when status = 'running' then $3 else error end,
					finished_at = case when status = 'running' then $4 else finished_at end,
					duration_ms = case when status = 'running' then (extract(epoch from $4 - least(started_at, $4)) * 1000)::bigint else duration_ms end
				where task_id = $5 and inngest_run_id = $1 and attempt < $2 and (status = 'running' or final)`,
				rec.RunID, rec.Attempt, abandonedText, rec.StartedAt, taskID)
			if err != nil {
				return err
			}
		}
		return refreshLastRun(ctx, tx, taskID)
	})
	if err != nil {
		return fmt.Errorf("write spooled run %s attempt %d: %w", rec.RunID, rec.Attempt, runErr(err))
	}
	return nil
}
