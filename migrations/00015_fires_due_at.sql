-- When a scheduled definition's next fire is due, as the last missed-fire
-- check found it with no fire due in its window: the check skips the
-- definition until then, so that an idle resync reads the definitions
-- with a fire due, not every scheduled one (reconciler/controller.go,
-- checkMissedFires). Null: not known, checked at the next resync. An
-- update of the definition and a recorded check set it back to null.

-- +goose Up
alter table root_scheduled_tasks add column fires_due_at timestamptz;

-- +goose Down
alter table root_scheduled_tasks drop column fires_due_at;
