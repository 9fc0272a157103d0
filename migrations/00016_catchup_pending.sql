-- The catch-up runs a definition's policy (latest, all) owes for the
-- fires counted missed, until they are sent and run: the fires, oldest
-- first, and the version they were found missing under. Counting a
-- missed fire and sending its catch-up are apart (the catch-ups wait for
-- the outage to end), so a new leader must find what is still owed.

-- +goose Up
alter table root_scheduled_tasks
    add column catchup_pending      timestamptz[] not null default '{}',
    add column catchup_pending_hash text;

-- +goose Down
alter table root_scheduled_tasks
    drop column catchup_pending_hash,
    drop column catchup_pending;
