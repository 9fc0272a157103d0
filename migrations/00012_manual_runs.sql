-- A run started by hand (tasksync trigger, a tasksync/run event, or
-- Inngest's Invoke) is marked on each of its attempts, so that the status
-- API can tell it from a scheduled or event run, and so that it neither
-- marks a one-shot fired nor keeps the one-shot's own run from running.

-- +goose Up
alter table root_task_runs add column manual boolean not null default false;

-- +goose StatementBegin
create or replace function root_mark_one_shot_fired() returns trigger language plpgsql as $$
begin
    if new.manual then
        return null;
    end if;
    update root_scheduled_tasks
    set fired_at = new.started_at, fired_run_id = new.inngest_run_id
    where id = new.task_id and revision = new.revision and trigger_type = 'date' and fired_at is null;
    return null;
end
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
create or replace function root_mark_one_shot_fired() returns trigger language plpgsql as $$
begin
    update root_scheduled_tasks
    set fired_at = new.started_at, fired_run_id = new.inngest_run_id
    where id = new.task_id and revision = new.revision and trigger_type = 'date' and fired_at is null;
    return null;
end
$$;
-- +goose StatementEnd

alter table root_task_runs drop column manual;
