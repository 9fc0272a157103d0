package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/riveredge/tasksync/reconciler"
)

// FireChecks returns every live, active cron or interval definition with
// the runs it started since it was last checked.
func (s *Store) FireChecks(ctx context.Context) ([]reconciler.FireCheck, error) {
	rows, err := s.pool.Query(ctx, `
		select d.id, t.code, d.spec -> 'spec' -> 'trigger', greatest(coalesce(d.fires_checked_at, d.updated_at), d.updated_at),
			coalesce((select array_agg(r.started_at order by r.started_at) from root_task_runs r
				where r.task_id = d.id and r.attempt = 0 and not r.manual and r.started_at >= greatest(coalesce(d.fires_checked_at, d.updated_at), d.updated_at) - interval '1 hour'), '{}')
		from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id
		where d.deleted_at is null and d.is_active and d.trigger_type in ('cron', 'interval')`)
	if err != nil {
		return nil, fmt.Errorf("fire checks: %w", redact(err))
	}
	defer rows.Close()
	var out []reconciler.FireCheck
	for rows.Next() {
		var c reconciler.FireCheck
		var trig []byte
		if err := rows.Scan(&c.ID, &c.Tenant, &trig, &c.From, &c.Runs); err != nil {
			return nil, fmt.Errorf("fire checks: %w", err)
		}
		if err := json.Unmarshal(trig, &c.Trigger); err != nil {
			return nil, fmt.Errorf("fire checks: trigger of %d: %w", c.ID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RecordFireCheck records that a definition's fires were checked up to
// `to`, with the missed ones counted.
func (s *Store) RecordFireCheck(ctx context.Context, id int64, to time.Time, missed []time.Time) error {
	var last *time.Time
	if len(missed) > 0 {
		last = &missed[len(missed)-1]
	}
	_, err := s.pool.Exec(ctx, `
		update root_scheduled_tasks set fires_checked_at = $2, missed_fires = missed_fires + $3,
			last_missed_fire_at = coalesce($4, last_missed_fire_at)
		where id = $1`, id, to, len(missed), last)
	if err != nil {
		return fmt.Errorf("record fire check: %w", redact(err))
	}
	return nil
}
