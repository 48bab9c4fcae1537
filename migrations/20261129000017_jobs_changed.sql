-- Every change of a job record is told to the api instances, which keep the
-- ETags of the statuses they answered (api::job_versions): a poll for an
-- unchanged job is then a 304 without a query. A trigger, not the writers,
-- so no writer can forget it: the worker, the relay, account deletion's
-- cascade and an operator's SQL all notify. Inserts are not told: no
-- instance can hold a tag for a job that did not exist.
create function jobs_changed() returns trigger
language plpgsql as $$
begin
    perform pg_notify('jobs_changed', old.job_id::text);
    return null;
end
$$;

create trigger jobs_changed
    after update or delete on jobs
    for each row execute function jobs_changed();
