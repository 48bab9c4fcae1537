//! The tables only the api writes, with the same rule as the owners in
//! `store`: each module is the only writer of its tables.
//!
//! - [`admin`]: operators' dashboard sessions (server-side) and the audit log of their actions.
//! - [`incidents`]: alert incidents, opened and closed once each, and whether the team was told.

pub mod admin;
pub mod incidents;
