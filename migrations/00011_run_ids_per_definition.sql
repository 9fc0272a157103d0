-- A run's attempts are keyed by their definition too: (task_id,
-- inngest_run_id, attempt). Keyed by the run id alone, a call naming
-- another definition's run id (a forged call in dev mode) matched and
-- overwrote that definition's rows, possibly another tenant's. The run
-- store's statements all name the definition now.

-- +goose Up
alter table root_task_runs drop constraint root_task_runs_inngest_run_id_attempt_key;
alter table root_task_runs add constraint root_task_runs_task_run_attempt_key unique (task_id, inngest_run_id, attempt);

-- +goose Down
alter table root_task_runs drop constraint root_task_runs_task_run_attempt_key;
alter table root_task_runs add constraint root_task_runs_inngest_run_id_attempt_key unique (inngest_run_id, attempt);
