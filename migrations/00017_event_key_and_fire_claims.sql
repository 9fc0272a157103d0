-- tasksync's own events (a manual run, an interval's or a catch-up's
-- fire, a one-shot's) carry a MAC under a key only the daemon's replicas
-- and `tasksync trigger` hold, and their ids derive from it: the event
-- key of the engine is not enough to forge them, or to send an event
-- under an id tasksync will use. The key is generated once, by the first
-- process that needs it, and kept here; nothing else reads it (not the
-- status API, not a log).
--
-- A scheduled fire has one run: the run that first claims (task,
-- scheduled_for) holds it, atomically, and any other run for the same
-- fire is refused. The claims of the runs already recorded are taken
-- from them (the first run of each fire).

-- +goose Up
create table root_event_key (
    id         boolean primary key default true check (id),
    key        bytea not null check (length(key) >= 32),
    created_at timestamptz not null default now()
);
create table root_fire_claims (
    task_id        bigint not null references root_scheduled_tasks (id) on delete cascade,
    scheduled_for  timestamptz not null,
    inngest_run_id text not null,
    claimed_at     timestamptz not null default now(),
    primary key (task_id, scheduled_for)
);
insert into root_fire_claims (task_id, scheduled_for, inngest_run_id)
select distinct on (task_id, scheduled_for) task_id, scheduled_for, inngest_run_id
from root_task_runs where scheduled_for is not null
order by task_id, scheduled_for, id;

-- +goose Down
drop table root_fire_claims;
drop table root_event_key;
