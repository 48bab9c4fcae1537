//! Black-box tests of the `worker` binary: real processes, real signals.

mod account_deletion;
mod budgets;
mod chaos;
mod dead_letters;
mod failures;
mod faults;
mod follow_up;
mod hostile_files;
mod maintenance;
mod metrics;
mod onboarding;
mod photos;
mod request_ids;
mod shutdown;
mod slack;
mod slack_batches;
mod stripe;
mod stripe_events;
mod stripe_ties;
