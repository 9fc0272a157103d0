-- What was last registered with Inngest for each tenant's app: the
-- SHA-256 of the registration body as sent (its functions and their
-- configuration, the app's URL). A sync whose body hashes the same, and
-- whose app Inngest still holds, registers nothing.

-- +goose Up
alter table root_tenants add column registered_hash text;

-- +goose Down
alter table root_tenants drop column registered_hash;
