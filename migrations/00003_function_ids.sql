-- Function ids unambiguous for every tenant/code pair: a live definition's
-- <prefix>-<tenant>-<code> becomes <prefix>-<tenant>-_<code> (tenant codes
-- hold no '_'). Retired rows keep the id they were registered under. The
-- next sync of each app registers the new ids and drops the old ones.

-- +goose Up
update root_scheduled_tasks
set inngest_function_id = left(inngest_function_id, length(inngest_function_id) - length(code)) || '_' || code
where deleted_at is null
  and inngest_function_id is not null
  and right(inngest_function_id, length(code) + 1) = '-' || code
  and right(inngest_function_id, length(code) + 2) <> '-_' || code;

-- +goose Down
update root_scheduled_tasks
set inngest_function_id = left(inngest_function_id, length(inngest_function_id) - length(code) - 1) || code
where deleted_at is null
  and right(inngest_function_id, length(code) + 2) = '-_' || code;
