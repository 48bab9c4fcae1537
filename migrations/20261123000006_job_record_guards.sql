-- Job records that only move forward, and errors fit for end users.
--
-- Additive only (expand/contract): the previous release neither writes nor
-- reads what is added here, so it keeps working against this schema.

-- `error` is what the end user sees; it is now written for them, with a
-- stable `error_code` beside it. What went wrong inside (provider replies,
-- paths, SQL) goes to `error_detail`, which only operators see.
alter table jobs
    add column error_code text,
    add column error_detail text,
    -- The attempt that owns the record: set when an attempt starts, required
    -- by every later write of that attempt, so a worker that lost its lock
    -- cannot overwrite what the attempt after it recorded.
    add column run_id uuid;

-- Errors written before this release are internal text: keep them for
-- operators and show the end user a plain sentence.
update jobs
set error_detail = error,
    error_code = 'failed',
    error = 'This step could not be completed.'
where error is not null;
