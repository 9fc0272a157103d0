-- A manual run's event (tasksync/run, signed) starts at most one run: the
-- run that first claims its nonce holds it, atomically, in the
-- transaction that records its start, and any other run of the same
-- event (the event posted again) is refused. A claim is pruned with the
-- fire claims, once older than the event's hour of validity: a run of
-- such an event is refused as too old anyway.

-- +goose Up
create table root_manual_claims (
    nonce          text primary key,
    inngest_run_id text not null,
    claimed_at     timestamptz not null default now()
);
create index root_manual_claims_claimed_at on root_manual_claims (claimed_at);

-- +goose Down
drop table root_manual_claims;
