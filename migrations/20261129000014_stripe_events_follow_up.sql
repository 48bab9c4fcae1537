-- Stripe events received by webhook, subscriptions kept from them, and
-- delayed jobs (the follow-up email) with their unsubscribe preference.
--
-- Additive only (expand/contract): the previous release neither writes nor
-- reads what is added here, and a null `user_id` is only written for the
-- new `stripe-event` jobs.

-- A Stripe event belongs to no user when it arrives (its customer may be
-- unknown); its job record is the system's own.
alter table jobs
    alter column user_id drop not null,
    -- A delayed job's due time: the relay hands it to Redis with the
    -- remaining delay, and hands it again if Redis lost it.
    add column run_at timestamptz;

-- Jobs that reached Redis and have not finished: the relay re-delivers the
-- ones overdue (a Redis that lost its data), so keep that scan small.
create index jobs_unfinished_idx on jobs (greatest(run_at, enqueued_at))
    where state in ('waiting', 'delayed');

-- Every event Stripe delivered, once: the primary key makes a second
-- delivery of the same event a no-op. `created` is Stripe's own time of the
-- event, which orders the changes it carries.
create table stripe_events (
    event_id text primary key,
    type text not null,
    created timestamptz not null,
    payload jsonb not null,
    job_id uuid not null,
    received_at timestamptz not null default now()
);

create index stripe_events_received_at_idx on stripe_events (received_at);

-- A user's Stripe subscriptions as the latest event said. `event_created`
-- is the `created` time of the event that wrote the row: an older event
-- arriving late changes nothing.
create table subscriptions (
    subscription_id text primary key,
    user_id uuid not null references users (user_id) on delete cascade,
    status text not null,
    price_id text,
    current_period_end timestamptz,
    cancel_at_period_end boolean not null default false,
    event_created timestamptz not null,
    updated_at timestamptz not null default now()
);

create index subscriptions_user_id_idx on subscriptions (user_id);

-- Product mail (the follow-up) goes only to users who did not opt out;
-- transactional mail (links, notices) always goes.
alter table users
    add column product_email_unsubscribed_at timestamptz,
    -- Set once the follow-up is handed over, so a redelivered job does not
    -- send it twice.
    add column follow_up_sent_at timestamptz;
