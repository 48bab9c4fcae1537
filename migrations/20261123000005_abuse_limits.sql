-- Limits that must hold across api instances live in the database.
--
-- Additive only (expand/contract): the previous release neither writes nor
-- reads what is added here, so it keeps working against this schema.

-- An upload reserves its photo row when it starts ('uploading'), under a
-- lock on the user row, so the per-account upload rate and storage quota
-- hold for concurrent requests on any number of instances.
alter table photos drop constraint photos_state_check;
alter table photos add constraint photos_state_check
    check (state in ('uploading', 'processing', 'ready', 'failed'));
create index photos_user_id_created_at_idx on photos (user_id, created_at);

-- Failed logins per account in the current window: a password cannot be
-- guessed from many addresses.
alter table users
    add column login_failures integer not null default 0,
    add column login_failures_since timestamptz;
