-- The Stripe customer each event is about, so an account's deletion finds
-- (and purges) the payloads that hold its customer's email and name.
--
-- Additive only (expand/contract): a generated column, filled by Postgres
-- for the previous release's inserts too; adding it rewrites the table
-- once, which holds at most `JOB_RECORD_RETENTION_DAYS` of events.
--
-- The customer is the object's `customer` (an id, or the expanded object's
-- id) or, for a `customer.*` event, the object itself. A purged payload
-- names nobody, so its customer is null.
alter table stripe_events
    add column customer_id text generated always as (coalesce(
        payload #>> '{data,object,customer,id}',
        payload #>> '{data,object,customer}',
        case when payload #>> '{data,object,object}' = 'customer'
             then payload #>> '{data,object,id}' end
    )) stored;

create index stripe_events_customer_id_idx on stripe_events (customer_id)
    where customer_id is not null;
