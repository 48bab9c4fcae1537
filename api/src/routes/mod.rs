//! One module per resource; each exposes a `router()`.

mod admin;
mod files;
mod health;
mod jobs;
mod me;
mod metrics;
pub mod openapi;
mod photos;
mod session;
mod signup;
mod users;
mod web;

pub use admin::router as admin;
pub use admin::session_router as admin_session;
pub use health::router as health;
pub use jobs::router as jobs;
pub use me::router as profile;
pub use metrics::router as metrics;
pub use photos::AvatarUrls;
pub use photos::FRAMING_BYTES as PHOTO_FRAMING_BYTES;
pub use photos::router as photos;
pub use session::{login_router as login, logout_router as logout};
pub use signup::router as signup;
pub use users::UserBody;
pub use web::router as web;
