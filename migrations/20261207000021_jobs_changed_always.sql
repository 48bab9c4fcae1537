-- Two changes of job records that `jobs_changed` (…17) did not tell the api
-- instances, which then answered a stale 304 from memory (api::job_versions):
--
-- - TRUNCATE fires no row trigger. A statement trigger tells every
--   instance to forget every job: the payload `all` (never a job id).
-- - A session with `session_replication_role = replica` (a logical
--   replication subscriber applying changes, an operator's bulk fix run
--   that way to skip other triggers) fires only triggers enabled REPLICA or
--   ALWAYS. Both triggers are enabled ALWAYS, so such a session notifies too.
--
-- The listener trusts its memory only while both are enabled ALWAYS
-- (`pg_trigger.tgenabled = 'A'`): turned off, or back on with a plain
-- `enable trigger` (origin only), every poll asks the database.
create function jobs_truncated() returns trigger
language plpgsql as $$
begin
    perform pg_notify('jobs_changed', 'all');
    return null;
end
$$;

create trigger jobs_truncated
    after truncate on jobs
    for each statement execute function jobs_truncated();

alter table jobs enable always trigger jobs_changed;
alter table jobs enable always trigger jobs_truncated;
