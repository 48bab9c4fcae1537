-- The Stripe customer of each user, set once by the stripe-customer job.
alter table users add column stripe_customer_id text;

-- One Stripe customer belongs to one user; a second job for the same user
-- that somehow got another id fails loudly instead of overwriting.
create unique index users_stripe_customer_id_key on users (stripe_customer_id);
