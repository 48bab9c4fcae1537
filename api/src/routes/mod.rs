//! One module per resource; each declares its endpoints (route, OpenAPI
//! entry and limits together) with an `endpoints` function, collected in
//! [`table`].

mod admin;
mod email;
pub mod endpoints;
mod events;
mod files;
mod health;
pub(crate) mod jobs;
pub(crate) mod me;
mod media;
mod metrics;
pub mod openapi;
mod password;
mod photos;
mod preferences;
mod session;
mod signup;
pub mod table;
mod users;
mod web;
mod webhooks;

pub use media::AvatarUrls;
pub use users::UserBody;
