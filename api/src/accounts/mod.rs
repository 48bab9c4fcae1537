//! The account flows, HTTP aside: each takes the app, the request and
//! validated input, applies the account's rules (credentials' epochs, mail
//! budgets, the take-over of unproven addresses, which jobs are recorded)
//! in one [`UnitOfWork`](crate::outbox::UnitOfWork), and returns what
//! happened. Routes map that to an answer.
//!
//! - [`signup`]: a new account, its session and its first jobs.
//! - [`confirmation`]: proving an address (or moving to a new one), and
//!   the link sent again.
//! - [`reset`]: the reset link asked for, and followed.
//! - [`credentials`]: the password asked again, a new password, a new
//!   address asked for.
//! - [`sessions`]: a login under the limits on failed logins, and every
//!   session ended.
//! - [`deletion`]: the way out.
//! - `take_over`: an address taken from an account that never proved it.
//! - `links`: emails with a link, within their budgets.

pub mod confirmation;
pub mod credentials;
pub mod deletion;
mod links;
pub mod reset;
pub mod sessions;
pub mod signup;
mod take_over;

/// Addresses are one account's in any letter case (the unique index is on
/// `lower(email)`).
fn same_address(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}
