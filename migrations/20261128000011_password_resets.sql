-- Password reset links: single use, short-lived, stored as the SHA-256 of
-- the token the email carries (a leaked table resets nobody's password).
create table password_resets (
    token_hash bytea primary key,
    user_id uuid not null references users (user_id) on delete cascade,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at timestamptz
);

create index password_resets_user_id_idx on password_resets (user_id);
