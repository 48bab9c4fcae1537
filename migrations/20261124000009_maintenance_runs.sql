-- What each run of a scheduled maintenance task removed, for operators
-- (and for the tests that check a schedule fires once per period).
create table maintenance_runs (
    run_id      uuid primary key,
    task        text not null,
    -- The BullMQ job that ran it (`repeat:<scheduler>:<time>`), or null for
    -- a run started by hand (`worker maintenance run`).
    bullmq_job  text,
    -- Counts per kind of thing removed, e.g. {"tokens": 3}.
    removed     jsonb not null,
    started_at  timestamptz not null,
    finished_at timestamptz not null default now()
);

create index maintenance_runs_task_idx on maintenance_runs (task, started_at desc);

-- Finished records are pruned by age.
create index jobs_finished_at_idx on jobs (finished_at) where state in ('completed', 'failed');
