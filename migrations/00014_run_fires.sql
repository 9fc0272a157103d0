-- Each scheduled run records the fire it was for (scheduled_for: the
-- instant of the cron or interval schedule, before any jitter), distinct
-- from when it started, and whether tasksync started it to catch up a
-- missed fire. Missed fires are the instants no run was for; a
-- definition keeps its last ones. A run without scheduled_for (an event's,
-- one started by hand, or one recorded before this migration) is for no
-- fire.

-- +goose Up
alter table root_task_runs
    add column scheduled_for timestamptz,
    add column catch_up      boolean not null default false;
create index root_task_runs_task_scheduled_for on root_task_runs (task_id, scheduled_for) where scheduled_for is not null;
alter table root_scheduled_tasks
    add column last_missed_fires timestamptz[] not null default '{}';
-- Runs recorded before this migration name no fire: the checks start
-- from now, so that those runs' fires are not counted as missed.
update root_scheduled_tasks set fires_checked_at = greatest(coalesce(fires_checked_at, now()), now())
    where deleted_at is null and trigger_type in ('cron', 'interval');

-- +goose Down
alter table root_scheduled_tasks drop column last_missed_fires;
drop index root_task_runs_task_scheduled_for;
alter table root_task_runs
    drop column catch_up,
    drop column scheduled_for;
