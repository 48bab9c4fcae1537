//! How a user is shown to themselves, in every answer that includes them
//! (signup, login, profile).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A user as the API shows it to themselves.
#[derive(Debug, Serialize)]
pub struct UserBody {
    /// User id.
    pub id: Uuid,
    /// Email, as the user typed it.
    pub email: String,
    /// Display name.
    pub name: String,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}
