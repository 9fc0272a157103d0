package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/riveredge/tasksync/reconciler"
)

// maxLastMissedFires is how many of its last missed fires a definition
// keeps for the status API.
const maxLastMissedFires = 10

// FireChecks returns every live, active cron or interval definition whose
// next fire is due by `to` or not known (see SetFiresDue), or that owes
// catch-up runs, with the fires its runs were for since an hour before it
// was last checked (or since the oldest catch-up it owes), and the
// catch-ups it owes for its applied version.
func (s *Store) FireChecks(ctx context.Context, to time.Time) ([]reconciler.FireCheck, error) {
	rows, err := s.pool.Query(ctx, `
		select d.id, t.code, d.code, d.spec_hash, d.spec -> 'spec' -> 'trigger', greatest(coalesce(d.fires_checked_at, d.updated_at), d.updated_at),
			coalesce((select array_agg(distinct r.scheduled_for) from root_task_runs r
				where r.task_id = d.id and r.scheduled_for >= least(greatest(coalesce(d.fires_checked_at, d.updated_at), d.updated_at) - interval '1 hour',
					coalesce((select min(p) from unnest(d.catchup_pending) p), 'infinity'))), '{}'),
			case when d.catchup_pending_hash = d.spec_hash then d.catchup_pending else '{}' end
		from root_scheduled_tasks d join root_tenants t on t.id = d.tenant_id
		where d.deleted_at is null and d.is_active and d.trigger_type in ('cron', 'interval')
			and (d.fires_due_at is null or d.fires_due_at <= $1
				or (cardinality(d.catchup_pending) > 0 and d.catchup_pending_hash = d.spec_hash))`, to)
	if err != nil {
		return nil, fmt.Errorf("fire checks: %w", redact(err))
	}
	defer rows.Close()
	var out []reconciler.FireCheck
	for rows.Next() {
		var c reconciler.FireCheck
		var trig []byte
		if err := rows.Scan(&c.ID, &c.Tenant, &c.Code, &c.Hash, &trig, &c.From, &c.Fired, &c.Pending); err != nil {
			return nil, fmt.Errorf("fire checks: %w", err)
		}
		if err := json.Unmarshal(trig, &c.Trigger); err != nil {
			return nil, fmt.Errorf("fire checks: trigger of %d: %w", c.ID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RecordFireCheck records that a definition's fires were checked from
// c.From up to `to`, with the missed ones counted and the last of them
// kept, and the catch-up runs owed now (pending, for c.Hash). The update
// applies only while the definition's window still starts at c.From: a
// check of the same window recorded first (by a former leader) or a new
// version applied since makes it change nothing, and counted is false.
func (s *Store) RecordFireCheck(ctx context.Context, c reconciler.FireCheck, to time.Time, missed, pending []time.Time) (counted bool, err error) {
	var last *time.Time
	if len(missed) > 0 {
		last = &missed[len(missed)-1]
	}
	if missed == nil {
		missed = []time.Time{}
	}
	if pending == nil {
		pending = []time.Time{}
	}
	tag, err := s.pool.Exec(ctx, `
		update root_scheduled_tasks set fires_checked_at = $2, missed_fires = missed_fires + $3,
			last_missed_fire_at = coalesce($4, last_missed_fire_at), fires_due_at = null,
			last_missed_fires = case when $3 = 0 then last_missed_fires else
				(select coalesce(array_agg(f order by f), '{}') from
					(select distinct f from unnest(last_missed_fires || $5::timestamptz[]) f order by f desc limit $6) k) end,
			catchup_pending = $8, catchup_pending_hash = $9
		where id = $1 and greatest(coalesce(fires_checked_at, updated_at), updated_at) = $7`,
		c.ID, to, len(missed), last, missed, maxLastMissedFires, c.From, pending, c.Hash)
	if err != nil {
		return false, fmt.Errorf("record fire check: %w", redact(err))
	}
	return tag.RowsAffected() == 1, nil
}

// SetFiresDue records when each definition's next fire is due, in one
// statement: FireChecks leaves a definition out until then. An update of
// the definition (Apply) and a recorded check set it back to unknown.
func (s *Store) SetFiresDue(ctx context.Context, due map[int64]time.Time) error {
	if len(due) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(due))
	ats := make([]time.Time, 0, len(due))
	for id, at := range due {
		ids, ats = append(ids, id), append(ats, at)
	}
	_, err := s.pool.Exec(ctx, `
		update root_scheduled_tasks d set fires_due_at = u.at
		from unnest($1::bigint[], $2::timestamptz[]) as u(id, at)
		where d.id = u.id`, ids, ats)
	if err != nil {
		return fmt.Errorf("record fires due: %w", redact(err))
	}
	return nil
}
