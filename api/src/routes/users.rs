//! How a user is shown to themselves, in every answer that includes them
//! (signup, login, profile).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

/// A user as the API shows it to themselves.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserBody {
    /// User id.
    pub id: Uuid,
    /// Email, as the user typed it.
    pub email: String,
    /// Display name.
    pub name: String,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// Whether the address is confirmed. Until it is, there is no welcome
    /// email and no billing customer; `POST /api/email/verify/resend`
    /// sends the link again.
    pub email_verified: bool,
}

impl UserBody {
    /// The user as they are now; `None` once the account is gone.
    pub async fn find(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Option<Self>> {
        sqlx::query_as!(
            UserBody,
            r#"select user_id as id, email, name, created_at,
                      email_verified_at is not null as "email_verified!"
               from users where user_id = $1"#,
            user_id,
        )
        .fetch_optional(db)
        .await
    }
}

impl From<store::users::User> for UserBody {
    fn from(user: store::users::User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            name: user.name,
            created_at: user.created_at,
            email_verified: user.email_verified,
        }
    }
}
