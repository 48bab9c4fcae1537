//! The api's own table owners, on their own, against a real Postgres: the
//! transitions they name and the ones they refuse, without an app around
//! them.

mod admin;
mod incidents;
