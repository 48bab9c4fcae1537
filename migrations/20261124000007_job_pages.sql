-- `GET /api/me/jobs` pages through a user's jobs newest first with a keyset
-- cursor (created_at, job_id); this index answers each page without a sort.
-- It leads with user_id, so it also serves everything the old index did.
create index jobs_user_id_created_at_idx on jobs (user_id, created_at desc, job_id desc);
drop index jobs_user_id_idx;
