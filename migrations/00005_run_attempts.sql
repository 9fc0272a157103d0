-- Run attempts that always end, and say how.
--
-- Each attempt row records whether it is its run's final attempt, the
-- workflow step that failed, and when it must have ended (deadline_at):
-- the leader closes a row still running some grace after it as abandoned.
-- Outputs are JSON values (jsonb), not strings of JSON; so are the outputs
-- of a workflow's steps. An output that is not valid JSON (one cut at its
-- size cap by an earlier version) becomes a JSON string.

-- +goose Up
-- +goose StatementBegin
create function pg_temp.as_json(t text) returns jsonb language plpgsql immutable as $$
begin
    return t::jsonb;
exception when others then
    return to_jsonb(t);
end $$;
-- +goose StatementEnd

alter table root_task_runs
    add column final       boolean not null default false,
    add column failed_step text,
    add column deadline_at timestamptz,
    alter column output type jsonb using pg_temp.as_json(output);

update root_task_runs r
set steps = (
    select jsonb_agg(case when jsonb_typeof(s -> 'output') = 'string'
                          then jsonb_set(s, '{output}', pg_temp.as_json(s ->> 'output')) else s end
                     order by n)
    from jsonb_array_elements(r.steps) with ordinality as e (s, n))
where jsonb_typeof(r.steps) = 'array' and jsonb_array_length(r.steps) > 0;

-- The last ended attempt of each run is taken for its final one.
update root_task_runs r set final = true
where r.status <> 'running'
  and r.attempt = (select max(x.attempt) from root_task_runs x where x.inngest_run_id = r.inngest_run_id);

-- The failed step of a workflow attempt, from its steps.
update root_task_runs r
set failed_step = (select s ->> 'id' from jsonb_array_elements(r.steps) s where s ->> 'status' = 'failed' limit 1)
where r.status = 'failed' and jsonb_typeof(r.steps) = 'array';

-- A definition's last run is its newest attempt row, and is_running says
-- whether any of its attempts runs: from the rows, as every write keeps it.
update root_scheduled_tasks d
set is_running = exists (select 1 from root_task_runs r where r.task_id = d.id and r.status = 'running'),
    last_run_at = lr.started_at, last_run_status = lr.status, last_error = lr.error
from root_scheduled_tasks d2
left join lateral (select started_at, status, error from root_task_runs r where r.task_id = d2.id order by r.id desc limit 1) lr on true
where d.id = d2.id and (lr.status is not null or d.is_running);

-- The leader's sweep of attempts left running, and the retention pruning.
create index root_task_runs_running on root_task_runs (task_id) where status = 'running';
create index root_task_runs_started on root_task_runs (started_at);
create index root_task_runs_task_id on root_task_runs (task_id, id desc);
drop function pg_temp.as_json(text);

-- +goose Down
drop index root_task_runs_task_id;
drop index root_task_runs_started;
drop index root_task_runs_running;
update root_task_runs set steps = (
    select jsonb_agg(case when s ? 'output' then jsonb_set(s, '{output}', to_jsonb((s -> 'output')::text)) else s end order by n)
    from jsonb_array_elements(steps) with ordinality as e (s, n))
where jsonb_typeof(steps) = 'array' and jsonb_array_length(steps) > 0;
alter table root_task_runs
    alter column output type text using output::text,
    drop column deadline_at,
    drop column failed_step,
    drop column final;
