-- Every emailed link and every new session is issued for one state of the
-- account's credentials. `credentials_epoch` counts the changes of that
-- state (a password set, an address moved, deletion begun); a link or a
-- login carries the epoch it was asked under and is void once the account
-- has moved past it. One number in one row, so
-- "is this still the account it was issued for?" is one comparison under
-- the row's lock.
alter table users add column credentials_epoch bigint not null default 0;
-- "End every session" is not a change of credentials (it must not let
-- whoever knows the password void the owner's reset link, silently): it
-- has its own count, which only new sessions are checked against.
alter table users add column sessions_epoch bigint not null default 0;

-- A reset link is also bound to the address it was sent to. Links from
-- before this migration were sent to the address the account has now.
alter table password_resets
    add column email text,
    add column epoch bigint not null default 0;
update password_resets r set email = u.email from users u where u.user_id = r.user_id;
alter table password_resets alter column email set not null;

alter table email_verifications add column epoch bigint not null default 0;

-- A password asked again of a signed-in user (a change, a deletion) is
-- counted on the session that asks, not on the account: strangers' failed
-- logins do not lock the owner's own session out of its account, and a
-- stolen session guesses no faster than the login form allows.
alter table api_tokens
    add column password_failures integer not null default 0,
    add column password_failures_since timestamptz;

-- Mail budgets: how many emails of one kind went to one address (or one
-- account) recently, counted before the email is recorded, under the
-- row's lock, so concurrent requests cannot all see "fewer than the
-- limit". The key is the SHA-256 of the budget's kind and the lowercased
-- address or the account id: no address is stored here in clear.
create table mail_budgets (
    budget_key bytea primary key,
    sent_at timestamptz[] not null,
    last_sent_at timestamptz not null default now()
);
create index mail_budgets_last_sent_at_idx on mail_budgets (last_sent_at);
