-- Users, their bearer tokens, and the durable record of every background job.

create table users (
    user_id uuid primary key,
    -- Kept as the user typed it (trimmed); uniqueness is case-insensitive below.
    email text not null,
    name text not null,
    password_hash text not null,
    -- Set by the welcome-email job once the message is handed to the mail
    -- transport, so a redelivered job does not send a second email.
    welcome_email_sent_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- A unique index (not a column constraint) so "Bob@x.io" and "bob@x.io" collide.
-- The API maps a violation of this name to 409 email_taken.
create unique index users_email_key on users (lower(email));

create table api_tokens (
    -- SHA-256 of the opaque token: a leaked table does not leak sessions.
    token_hash bytea primary key,
    user_id uuid not null references users (user_id) on delete cascade,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null
);

create index api_tokens_user_id_idx on api_tokens (user_id);

-- The transactional outbox and the job-status record in one table.
-- A row is written in the same transaction as the change that causes it, so a
-- job can never be lost between Postgres and Redis; `job_id` is also the
-- BullMQ jobId, so enqueueing the same row twice is a no-op in Redis.
create table jobs (
    job_id uuid primary key,
    user_id uuid not null references users (user_id) on delete cascade,
    -- The BullMQ queue (and job) name, e.g. 'welcome-email'.
    queue text not null,
    payload jsonb not null,
    state text not null default 'pending',
    attempts_made integer not null default 0,
    max_attempts integer not null,
    progress smallint not null default 0,
    result jsonb,
    error text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    enqueued_at timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    constraint jobs_state_check check (
        state in ('pending', 'waiting', 'delayed', 'active', 'completed', 'failed')
    ),
    constraint jobs_progress_check check (progress between 0 and 100)
);

create index jobs_user_id_idx on jobs (user_id);
-- The relay scans only rows that never reached Redis; keep that scan tiny.
create index jobs_pending_idx on jobs (created_at) where state = 'pending';
