-- Missed-fire accounting: a scheduled fire that produced no run within its
-- grace period is counted on its definition.

-- +goose Up
alter table root_scheduled_tasks
    add column missed_fires        bigint not null default 0,
    add column last_missed_fire_at timestamptz,
    add column fires_checked_at    timestamptz;

-- +goose Down
alter table root_scheduled_tasks
    drop column fires_checked_at,
    drop column last_missed_fire_at,
    drop column missed_fires;
