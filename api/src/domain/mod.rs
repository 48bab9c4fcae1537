//! Types that can only hold valid values: parse once at the edge, then trust.

mod email;
mod name;
mod new_user;
mod password;

pub use email::EmailAddress;
pub use name::UserName;
pub use new_user::{FieldErrors, NewUser, SignupForm};
pub use password::Password;
