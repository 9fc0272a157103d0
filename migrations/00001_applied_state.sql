-- The applied state: tenants, their definitions and their runs.
--
-- root_scheduled_tasks keeps the columns of the original design, unchanged
-- in name and meaning, and adds what reconciliation needs.

-- +goose Up
create table root_tenants (
    id          serial primary key,
    code        text not null unique,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    -- Retirements the prune budget holds back (codes), and since when.
    retire_held      text[] not null default '{}',
    retire_held_since timestamptz,
    -- Inngest sync state of the tenant's app.
    sync_state       text not null default 'pending',
    sync_error       text,
    last_synced_at   timestamptz
);

create table root_scheduled_tasks (
    id                  bigserial primary key,
    uuid                uuid not null unique default gen_random_uuid(),
    tenant_id           integer not null references root_tenants (id),
    name                text not null default '',
    code                text not null,
    description         text not null default '',
    type                text not null,  -- api_call | python_script | workflow
    trigger_type        text not null check (trigger_type in ('cron', 'interval', 'date', 'event')),
    trigger_config      jsonb not null,
    task_config         jsonb not null, -- the task's config, or {"steps": [...]} for a workflow
    inngest_function_id text,
    is_active           boolean not null,
    is_running          boolean not null default false,
    last_run_at         timestamptz,
    last_run_status     text,
    last_error          text,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    deleted_at          timestamptz,
    -- Reconciliation.
    kind                text not null check (kind in ('ScheduledTask', 'Workflow')),
    spec_hash           text not null,             -- SHA-256 of spec
    spec                jsonb not null,            -- the canonical normalized document
    script_files        jsonb not null default '{}', -- python_script file → content, for the executors
    source_path         text not null,
    source_line         integer not null,
    revision            bigint not null default 1, -- bumped by every applied change
    sync_state          text not null default 'pending',
    sync_error          text
);

-- A code names one live definition per tenant; retired rows keep history.
create unique index root_scheduled_tasks_tenant_code
    on root_scheduled_tasks (tenant_id, code) where deleted_at is null;
-- Status API: a tenant's definitions by kind, and search by name.
create index root_scheduled_tasks_tenant_kind
    on root_scheduled_tasks (tenant_id, kind, code) where deleted_at is null;

create table root_task_runs (
    id              bigserial primary key,
    tenant_id       integer not null references root_tenants (id),
    task_id         bigint not null references root_scheduled_tasks (id),
    revision        bigint not null,
    inngest_run_id  text not null,
    attempt         integer not null,
    status          text not null check (status in ('running', 'succeeded', 'failed')),
    started_at      timestamptz not null default now(),
    finished_at     timestamptz,
    duration_ms     bigint,
    error           text,
    output          text,
    steps           jsonb,
    unique (inngest_run_id, attempt)
);

-- Status API: a definition's runs, newest first.
create index root_task_runs_task_started on root_task_runs (task_id, started_at desc);

-- The current validation problems of each tenant's tree.
create table root_definition_errors (
    id        bigserial primary key,
    tenant_id integer not null references root_tenants (id),
    path      text not null,
    line      integer not null,
    col       integer not null,
    code      text not null default '',
    message   text not null
);
create index root_definition_errors_tenant on root_definition_errors (tenant_id, path, line);

-- One row per reconcile, for the status API and audits.
create table root_reconciles (
    id          bigserial primary key,
    started_at  timestamptz not null,
    finished_at timestamptz not null,
    result      text not null,
    created     integer not null,
    updated     integer not null,
    retired     integer not null,
    unchanged   integer not null,
    held        integer not null,
    errors      integer not null,
    message     text
);

-- +goose Down
drop table root_reconciles;
drop table root_definition_errors;
drop table root_task_runs;
drop table root_scheduled_tasks;
drop table root_tenants;
