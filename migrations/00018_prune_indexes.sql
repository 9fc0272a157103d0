-- Retention (`--run-retention`) deletes, at every resync of the leader,
-- the run records that ended before the cut-off, oldest first, and the
-- fire claims taken before it, a small batch at a time. Without an index
-- on when a record ended (or a claim was taken), each batch read and
-- sorted the whole table, also when nothing was old enough: these let
-- each batch read only the rows it deletes.

-- +goose Up
create index root_task_runs_ended on root_task_runs ((coalesce(finished_at, started_at))) where status <> 'running';
create index root_fire_claims_claimed_at on root_fire_claims (claimed_at);

-- +goose Down
drop index root_fire_claims_claimed_at;
drop index root_task_runs_ended;
