-- Operators' dashboard sessions, kept on the server so signing out ends a
-- session everywhere (a captured cookie dies with it), and "sign out every
-- session" exists. The cookie is a random token; only its hash is stored.
create table admin_sessions (
    session_hash bytea primary key,
    -- SHA-256 of the ADMIN_TOKEN the session was opened with: a new token
    -- ends every session at once.
    admin_token_hash bytea not null,
    client text not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null
);

create index admin_sessions_expires_at_idx on admin_sessions (expires_at);

-- Every operator action (retry, remove, pause, resume, signing in and out),
-- who did it and when; the dashboard shows the latest.
create table admin_audit (
    audit_id bigint generated always as identity primary key,
    at timestamptz not null default now(),
    -- 'token' (ADMIN_TOKEN as a bearer token) or 'session <8 hex>'.
    actor text not null,
    client text not null,
    action text not null,
    queue text,
    job_id text,
    detail text
);

create index admin_audit_at_idx on admin_audit (at desc, audit_id desc);
