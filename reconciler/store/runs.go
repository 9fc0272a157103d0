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

// StartRun records an attempt as running (idempotently: the engine may
// call an attempt twice) and marks the definition running.
func (s *Store) StartRun(ctx context.Context, ref reconciler.AppliedRef, in reconciler.RunInput) (int64, error) {
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			insert into root_task_runs (tenant_id, task_id, revision, inngest_run_id, attempt, status)
			select tenant_id, id, $2, $3, $4, 'running' from root_scheduled_tasks where id = $1
			on conflict (inngest_run_id, attempt) do update set status = 'running', started_at = now(), finished_at = null
			returning id`, ref.ID, ref.Revision, in.RunID, in.Attempt).Scan(&id)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `update root_scheduled_tasks set is_running = true where id = $1`, ref.ID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("start run: %w", runErr(err))
	}
	return id, nil
}

// FinishRun records an attempt's outcome on the run and its definition.
func (s *Store) FinishRun(ctx context.Context, ref reconciler.AppliedRef, runID int64, status reconciler.RunStatus, took time.Duration, errText, output string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			update root_task_runs set status = $2, finished_at = now(), duration_ms = $3, error = nullif($4, ''), output = nullif($5, '')
			where id = $1`, runID, string(status), took.Milliseconds(), clean(errText), clean(output))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			update root_scheduled_tasks set is_running = exists (
					select 1 from root_task_runs where task_id = $1 and status = 'running' and id <> $2),
				last_run_at = now(), last_run_status = $3, last_error = nullif($4, '')
			where id = $1`, ref.ID, runID, string(status), clean(errText))
		return err
	})
	if err != nil {
		return fmt.Errorf("finish run: %w", runErr(err))
	}
	return nil
}

// clean removes NUL bytes, which PostgreSQL text cannot hold.
func clean(s string) string { return strings.ReplaceAll(s, "\x00", "") }

// RanBefore reports whether ref's version has a run under another run id.
func (s *Store) RanBefore(ctx context.Context, ref reconciler.AppliedRef, runID string) (bool, error) {
	var ran bool
	err := s.pool.QueryRow(ctx, `select exists (select 1 from root_task_runs where task_id = $1 and revision = $2 and inngest_run_id <> $3)`,
		ref.ID, ref.Revision, runID).Scan(&ran)
	if err != nil {
		return false, fmt.Errorf("earlier runs: %w", runErr(err))
	}
	return ran, nil
}

// RecordWorkflowRun upserts the record of a workflow run attempt with its
// steps' outcomes; the definition's last run is kept current.
func (s *Store) RecordWorkflowRun(ctx context.Context, ref reconciler.AppliedRef, in reconciler.RunInput, status reconciler.RunStatus, errText string, steps []reconciler.StepOutcome) error {
	stepsJSON, err := json.Marshal(steps)
	if err != nil {
		return err
	}
	finished := status != reconciler.RunRunning
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			insert into root_task_runs (tenant_id, task_id, revision, inngest_run_id, attempt, status, steps, error, finished_at, duration_ms)
			select tenant_id, id, $2, $3, $4, $5, $6, nullif($7, ''), case when $8 then now() end, null from root_scheduled_tasks where id = $1
			on conflict (inngest_run_id, attempt) do update set status = excluded.status, steps = excluded.steps, error = excluded.error,
				finished_at = excluded.finished_at,
				duration_ms = case when $8 then (extract(epoch from now() - root_task_runs.started_at) * 1000)::bigint end`,
			ref.ID, ref.Revision, in.RunID, in.Attempt, string(status), stepsJSON, clean(errText), finished)
		if err != nil {
			return err
		}
		if finished {
			_, err = tx.Exec(ctx, `update root_scheduled_tasks set last_run_at = now(), last_run_status = $2, last_error = nullif($3, '') where id = $1`,
				ref.ID, string(status), clean(errText))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("record workflow run: %w", runErr(err))
	}
	return nil
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
// be reached: an upsert of the attempt (run id, attempt), with the times
// the record carries, filed under the definition its ref names (by id, or
// else by tenant, code and hash: the version with that hash, or the live
// one, or the last retired one). The definition's last run is updated
// only by an outcome newer than the one it shows.
func (s *Store) WriteSpooledRun(ctx context.Context, rec reconciler.SpooledRun) error {
	var steps []byte
	if rec.Workflow {
		b, err := json.Marshal(rec.Steps)
		if err != nil {
			return fmt.Errorf("write spooled run %s: %w", rec.RunID, err)
		}
		steps = b
	}
	var finished *time.Time
	if !rec.FinishedAt.IsZero() {
		finished = &rec.FinishedAt
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var taskID int64
		err := tx.QueryRow(ctx, `
			with d as (
				select d.id, d.tenant_id, d.revision from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id
				where ($1 > 0 and d.id = $1) or ($1 = 0 and t.code = $2 and d.code = $3)
				order by d.spec_hash = $4 desc, d.deleted_at is null desc, d.id desc limit 1
			)
			insert into root_task_runs as r (tenant_id, task_id, revision, inngest_run_id, attempt, status, started_at, finished_at, duration_ms, error, output, steps)
			select tenant_id, id, case when $1 > 0 then $5 else revision end, $6, $7, $8, $9, $10,
				case when $10::timestamptz is not null then (extract(epoch from $10::timestamptz - $9::timestamptz) * 1000)::bigint end,
				nullif($11, ''), nullif($12, ''), $13 from d
			on conflict (inngest_run_id, attempt) do update set status = excluded.status,
				started_at = case when excluded.finished_at is null and not $14 then excluded.started_at else r.started_at end,
				finished_at = excluded.finished_at,
				duration_ms = case when excluded.finished_at is not null then
					(extract(epoch from excluded.finished_at - least(r.started_at, excluded.finished_at)) * 1000)::bigint end,
				error = excluded.error, output = coalesce(excluded.output, r.output), steps = coalesce(excluded.steps, r.steps)
			returning task_id`,
			rec.Ref.ID, rec.Ref.Tenant, rec.Ref.Code, rec.Ref.Hash, rec.Ref.Revision, rec.RunID, rec.Attempt, string(rec.Status),
			rec.StartedAt, finished, clean(rec.Error), clean(rec.Output), steps, rec.Workflow).Scan(&taskID)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("no definition %s/%s to file it under", rec.Ref.Tenant, rec.Ref.Code)
		}
		if err != nil {
			return err
		}
		if !rec.Workflow {
			_, err = tx.Exec(ctx, `update root_scheduled_tasks set is_running = exists (
				select 1 from root_task_runs where task_id = $1 and status = 'running') where id = $1`, taskID)
			if err != nil {
				return err
			}
		}
		if finished != nil {
			_, err = tx.Exec(ctx, `
				update root_scheduled_tasks set last_run_at = $2, last_run_status = $3, last_error = nullif($4, '')
				where id = $1 and (last_run_at is null or last_run_at <= $2)`,
				taskID, *finished, string(rec.Status), clean(rec.Error))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("write spooled run %s attempt %d: %w", rec.RunID, rec.Attempt, runErr(err))
	}
	return nil
}
