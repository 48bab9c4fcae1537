-- Alerts: each incident is a row, opened when a condition starts and closed
-- when it ends. At most one open row per condition and queue (the partial
-- unique index), so however many api instances evaluate, one opens it and
-- one closes it; the *_notified_at columns say whether the team has been
-- told, so a message that could not be sent is retried, never repeated.
create table incidents (
    incident_id bigint generated always as identity primary key,
    -- no_consumer, oldest_waiting, failures, misconfigured, outbox
    kind text not null,
    -- The queue, or '' for conditions of the whole system (the outbox).
    queue text not null,
    -- What was measured and what it was held against, as the message read.
    summary text not null,
    opened_at timestamptz not null default now(),
    closed_at timestamptz,
    opened_notified_at timestamptz,
    closed_notified_at timestamptz,
    constraint incidents_kind_check check (
        kind in ('no_consumer', 'oldest_waiting', 'failures', 'misconfigured', 'outbox')
    )
);

create unique index incidents_open_idx on incidents (kind, queue) where closed_at is null;
-- Messages still owed: few rows, read every evaluation.
create index incidents_unnotified_idx on incidents (opened_at)
    where opened_notified_at is null or (closed_at is not null and closed_notified_at is null);
