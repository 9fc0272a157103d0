-- One-shots as history: when the current version of a definition was
-- applied (a one-shot whose time had passed by then is expired and fires
-- nothing), and the first run of a one-shot's version (it has fired).
--
-- The fired mark is set by a trigger on root_task_runs, so that every way
-- a run is recorded (started, a workflow's record, a run written from the
-- spool) marks it, and it outlives the run rows that retention deletes.
-- Applying a new version clears it (reconciler/store/apply.go).

-- +goose Up
alter table root_scheduled_tasks
    add column revision_applied_at timestamptz,
    add column fired_at            timestamptz,
    add column fired_run_id        text;

update root_scheduled_tasks set revision_applied_at = updated_at;
alter table root_scheduled_tasks
    alter column revision_applied_at set default now(),
    alter column revision_applied_at set not null;

update root_scheduled_tasks d set fired_at = r.started_at, fired_run_id = r.inngest_run_id
from (
    select distinct on (task_id, revision) task_id, revision, started_at, inngest_run_id
    from root_task_runs order by task_id, revision, id
) r
where d.trigger_type = 'date' and r.task_id = d.id and r.revision = d.revision;

-- +goose StatementBegin
create function root_mark_one_shot_fired() returns trigger language plpgsql as $$
begin
    update root_scheduled_tasks
    set fired_at = new.started_at, fired_run_id = new.inngest_run_id
    where id = new.task_id and revision = new.revision and trigger_type = 'date' and fired_at is null;
    return null;
end
$$;
-- +goose StatementEnd

create trigger root_task_runs_one_shot_fired
    after insert on root_task_runs
    for each row execute function root_mark_one_shot_fired();

-- +goose Down
drop trigger root_task_runs_one_shot_fired on root_task_runs;
drop function root_mark_one_shot_fired();
alter table root_scheduled_tasks
    drop column fired_run_id,
    drop column fired_at,
    drop column revision_applied_at;
