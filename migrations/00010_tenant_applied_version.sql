-- A tenant's applied version: a counter that the transaction applying a
-- change to what the tenant's app serves (a definition created, updated,
-- moved or retired) raises by one (reconciler/store/apply.go). Followers
-- read every tenant's version in one query and reload only the tenants
-- whose version moved. The counter is raised under the tenant row's lock,
-- so it never goes back and no commit order hides a change.

-- +goose Up
alter table root_tenants add column applied_version bigint not null default 0;

-- +goose Down
alter table root_tenants drop column applied_version;
