-- Devices that have signed in to an account (OWASP's device cookie). While
-- an account is locked after failed logins, a login from one of its
-- trusted devices is counted on that device instead, so a stranger's
-- guesses cannot keep the owner out. Only the token's SHA-256 is stored.
create table trusted_devices (
    token_hash bytea primary key,
    user_id uuid not null references users (user_id) on delete cascade,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    login_failures integer not null default 0,
    login_failures_since timestamptz
);

create index trusted_devices_user_id_idx on trusted_devices (user_id);
