-- Email verification: an address is proven by a single-use link sent to
-- it. Accounts from before verification existed were welcomed already, so
-- they count as verified.
alter table users add column email_verified_at timestamptz;
update users set email_verified_at = created_at;

-- An address belongs to one account that is not being deleted: a reclaimed
-- squatter's account keeps its row (and the address) until its clean-up
-- job removes it. Same name, so the api's 409 mapping stays.
drop index users_email_key;
create unique index users_email_key on users (lower(email)) where deleting_since is null;

-- Links that prove an address, stored as the SHA-256 of the token the email
-- carries. `email` is the address the link proves: the account's own at
-- signup, a new one for an email change.
create table email_verifications (
    token_hash bytea primary key,
    user_id uuid not null references users (user_id) on delete cascade,
    email text not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at timestamptz
);

create index email_verifications_user_id_idx on email_verifications (user_id);
