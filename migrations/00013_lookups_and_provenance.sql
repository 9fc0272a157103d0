-- Lookups by run id and a tenant's recent runs, and the commit each
-- applied version came from.
--
-- GET /v1/runs/{run_id} finds a run's attempts by their Inngest run id
-- (the unique key leads with the definition); GET
-- /v1/tenants/{tenant}/runs lists a tenant's attempts newest first (by
-- id). source_commit is the git commit the tree was at when the
-- definition's current revision was applied (null when the tree is no git
-- checkout); a new commit alone rewrites no definition.

-- +goose Up
create index root_task_runs_inngest_run_id on root_task_runs (inngest_run_id);
create index root_task_runs_tenant_id on root_task_runs (tenant_id, id desc);
alter table root_scheduled_tasks add column source_commit text;

-- +goose Down
alter table root_scheduled_tasks drop column source_commit;
drop index root_task_runs_tenant_id;
drop index root_task_runs_inngest_run_id;
