-- The change feed moves out of Postgres (`queue::feed`): every commit that
-- sent a NOTIFY was serialised with every other one, which halved the job
-- writes a second Postgres could take. Whoever writes a record now
-- publishes its change in Redis after the commit. The previous release,
-- running on this schema (a rolling deploy, a rollback), sees its probe
-- refused with the triggers gone and asks the database for every poll:
-- slower for a while, never stale.
drop trigger jobs_changed on jobs;
drop trigger jobs_truncated on jobs;
drop function jobs_changed();
drop function jobs_truncated();

-- A record is now written `waiting` (or `delayed`) with the change that
-- causes it, and only a failed hand-over marks it `pending`: a job a
-- worker starts soon after costs no write to say it reached Redis. One
-- not started within the relay's grace is handed over again and marked
-- (`enqueued_at`), so the relay's scan of records Redis may not hold yet
-- (never confirmed) stays small.
-- (`jobs_pending_idx` stays for the previous release's relay, which scans
-- `pending` records; the release after this one drops it.)
create index jobs_unconfirmed_idx on jobs (created_at)
    where enqueued_at is null and state in ('pending', 'waiting', 'delayed');
