//! Black-box tests of the HTTP API: real Postgres, Redis, worker and SMTP sink.

mod account_abuse;
mod admin;
mod admin_access;
mod alert_rules;
mod alerts;
mod browser_headers;
mod cli;
mod cluster;
mod deploy;
mod events;
mod failover;
mod fleet;
mod fuzz;
mod hash_cost;
mod health;
mod instances;
mod jobs;
mod load;
mod memory;
mod metrics;
mod openapi;
mod overload;
mod owners;
mod password;
mod proxy;
mod rate_limit;
mod raw;
mod request_ids;
mod rollback;
mod schemathesis;
mod secrets;
mod session;
mod signup;
mod slow_clients;
mod traces;
mod unchanged_jobs;
mod upload_slots;
mod uploads;
mod validation;
mod verification;
mod web;
mod web_account;
mod web_live;
mod webhooks;

/// The worker binary beside ours (`cargo test --workspace` builds both).
fn worker_binary() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_BIN_EXE_api")).with_file_name("worker");
    assert!(
        path.exists(),
        "build the worker too: cargo test --workspace"
    );
    path
}
