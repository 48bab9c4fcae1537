-- Account deletion: set when the owner asks (the api, with the password),
-- before the clean-up job exists. From then on the account logs nobody in,
-- takes no upload and starts no job; the clean-up removes the row last.
alter table users add column deleting_since timestamptz;
