package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/riveredge/tasksync/reconciler"
)

// legacyRunBound is how long after its start an attempt row without a
// deadline (written before attempts had one) may still run.
const legacyRunBound = time.Hour

// CloseAbandoned closes as failed and final, with the error
// reconciler.ErrAbandoned, the attempts still running grace after their
// deadline: the replica running them stopped, and the engine did not
// retry them (a retry closes them at once). At most limit definitions are
// handled per call, each in a short transaction of its own. It returns the
// runs it closed, with their tenant and kind, for the run metrics.
func (s *Store) CloseAbandoned(ctx context.Context, grace time.Duration, limit int) ([]reconciler.AbandonedRun, error) {
	type task struct {
		ID     int64
		Tenant string
		Kind   reconciler.Kind
	}
	rows, err := s.pool.Query(ctx, `
		select d.id, t.code, d.kind from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id
		where d.id in (select distinct task_id from root_task_runs
			where status = 'running' and coalesce(deadline_at, started_at + $1::interval) + $2::interval < now()
			limit $3)`, legacyRunBound, grace, limit)
	if err != nil {
		return nil, fmt.Errorf("abandoned attempts: %w", runErr(err))
	}
	tasks, err := pgx.CollectRows(rows, pgx.RowToStructByPos[task])
	if err != nil {
		return nil, fmt.Errorf("abandoned attempts: %w", runErr(err))
	}
	var closed []reconciler.AbandonedRun
	for _, tk := range tasks {
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := lockTask(ctx, tx, tk.ID); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `
				with done as (
					update root_task_runs set status = 'failed', final = true, error = $2, finished_at = now(),
						duration_ms = (extract(epoch from now() - started_at) * 1000)::bigint
					where task_id = $1 and status = 'running' and coalesce(deadline_at, started_at + $3::interval) + $4::interval < now()
					returning inngest_run_id)
				select count(*)::int from done group by inngest_run_id`,
				tk.ID, abandonedText, legacyRunBound, grace)
			if err != nil {
				return err
			}
			perRun, err := pgx.CollectRows(rows, pgx.RowTo[int])
			if err != nil {
				return err
			}
			for _, n := range perRun {
				closed = append(closed, reconciler.AbandonedRun{Tenant: tk.Tenant, Kind: tk.Kind, Attempts: n})
			}
			return refreshLastRun(ctx, tx, tk.ID)
		})
		if err != nil {
			return closed, fmt.Errorf("close abandoned attempts: %w", runErr(err))
		}
	}
	return closed, nil
}

// PruneRuns' statements: $1 is the cut-off, $2 the batch. Each finds its
// rows through an index on when they ended or were claimed (migration
// 00018), so that a prune with nothing to delete reads no table.
const (
	pruneRunsSQL = `
		delete from root_task_runs where id = any (array(
			select r.id from root_task_runs r
			where r.status <> 'running' and coalesce(r.finished_at, r.started_at) < $1
				and r.id <> (select max(x.id) from root_task_runs x where x.task_id = r.task_id)
			order by coalesce(r.finished_at, r.started_at) limit $2))`
	pruneClaimsSQL = `delete from root_fire_claims where ctid = any (array(
		select ctid from root_fire_claims where claimed_at < $1 order by claimed_at limit $2))`
	pruneManualClaimsSQL = `delete from root_manual_claims where ctid = any (array(
		select ctid from root_manual_claims where claimed_at < $1 order by claimed_at limit $2))`
)

// PruneRuns deletes at most batch attempt rows that ended before
// `before` (a long workflow that just ended is kept the whole retention),
// oldest first, in one short statement; the
// newest row of each definition stays (it is the definition's last run).
// more reports whether a full batch was deleted: there may be more.
func (s *Store) PruneRuns(ctx context.Context, before time.Time, batch int) (deleted int, more bool, err error) {
	tag, err := s.pool.Exec(ctx, pruneRunsSQL, before, batch)
	if err != nil {
		return 0, false, fmt.Errorf("prune runs: %w", runErr(err))
	}
	n := int(tag.RowsAffected())
	// The claims of fires that old: a run for such a fire is refused
	// anyway (too late for its grace or its catch-up window).
	if _, err := s.pool.Exec(ctx, pruneClaimsSQL, before, batch); err != nil {
		return n, false, fmt.Errorf("prune fire claims: %w", runErr(err))
	}
	// The claims of manual events that old, and past their hour: a run
	// of such an event is refused anyway (reconciler.CheckSigned).
	manualBefore := time.Now().Add(-reconciler.ManualEventTTL - reconciler.OneShotSkew)
	if before.Before(manualBefore) {
		manualBefore = before
	}
	if _, err := s.pool.Exec(ctx, pruneManualClaimsSQL, manualBefore, batch); err != nil {
		return n, false, fmt.Errorf("prune manual run claims: %w", runErr(err))
	}
	return n, n == batch, nil
}
