//! Users: the `users` row. This module is the only writer of that table,
//! one file per concept (the account, its credentials, its address, its
//! profile, its deletion); every other module reads it or calls one of
//! these transitions.
//!
//! ```text
//! create (unverified; or reclaim_unverified: a squatter's goes to deleting) → mark_verified
//!        → (welcome email sent, Stripe customer set or deleted at Stripe, guide stored,
//!           avatar switched, password set, follow-up sent, product mail off or on)*
//!        → deleting (the owner asked; nothing new starts) → (Stripe customer forgotten) → delete
//! login attempts: counted before the password is checked, 0 → n (within a window, at most the limit)
//!                 → 0 on success or when the window ends
//! credentials epoch: n → n + 1 when the password is set, the address moves or deletion
//!                    begins; links and new sessions of epoch n are void
//! sessions epoch: n → n + 1 when every session is ended; new sessions of epoch n are void
//! ```
//!
//! Each write says in its SQL what it may change: a Stripe customer id is
//! set once, an avatar only moves to a newer photo, a lockout window restarts
//! only once the last one has ended. Deleting a user removes its tokens,
//! photos rows and job records with it (`on delete cascade`); files in
//! storage are the photos owner's to name ([`crate::photos`]).

mod account;
mod address;
mod credentials;
mod deletion;
mod profile;

pub use account::{CreateError, NewAccount, User, create};
pub use address::{
    address, change_email, id_by_email, is_taken, mark_verified, reclaim_unverified,
};
pub use credentials::{
    LoginAttempt, Standing, begin_login_attempt, clear_login_failures, end_every_session,
    hold_credentials, hold_for_session, lock, set_password, standing, standing_by_email,
};
pub use deletion::{Leftovers, begin_deletion, delete, forget_stripe_customer, leftovers};
pub use profile::{
    id_by_stripe_customer, mark_follow_up_sent, mark_welcome_email_sent, set_onboarding_pdf,
    set_product_email, set_stripe_customer, stripe_customer_deleted, switch_avatar,
};
