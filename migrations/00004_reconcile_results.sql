-- One vocabulary for how a reconcile ended: success | invalid | error.
-- run --once used to write 'failed' where the daemon wrote 'error'; both
-- write 'error' now, and the table accepts no other word.

-- +goose Up
update root_reconciles set result = 'error' where result = 'failed';
alter table root_reconciles
    add constraint root_reconciles_result check (result in ('success', 'invalid', 'error'));

-- +goose Down
alter table root_reconciles drop constraint root_reconciles_result;
