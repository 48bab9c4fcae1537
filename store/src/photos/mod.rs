//! Profile photos: the `photos` row. This module is the only writer of that
//! table (one file per concept: the upload, its processing, the clean-up), and every write says in its SQL which state it may leave:
//!
//! ```text
//! reserve → uploading ─commit→ processing ─mark_ready→ ready ─(a newer avatar)→ replaced
//!               │                  └─mark_failed→ failed
//!               ├─release / sweep_abandoned (the upload failed or was cut short)→ failed
//!               └─cancel (refused before its first byte: the instance was full)→ gone
//! replaced | failed ─clean_stale (past a grace period)→ gone
//! ```
//!
//! "Replaced" is not a column: a `ready` photo that is no longer anyone's
//! avatar. The per-account limits (uploads per hour, uploads in progress,
//! bytes stored) are checked under a lock on the user's row, when an upload
//! reserves its row and again when it commits, so they hold across
//! concurrent requests and api instances. An upload that failed or was cut
//! short stays as a `failed` row of no bytes until cleaned up, so it counts
//! against the hour: otherwise failing uploads on purpose would be free.
//! Files live in storage under `photos/<photo_id>/`; this
//! module names the rows whose files may go, the caller deletes them.

use sqlx::PgExecutor;
use uuid::Uuid;

mod cleanup;
mod processing;
mod upload;

pub use cleanup::{clean_stale, existing, ids_of_user};
pub use processing::{mark_failed, mark_ready};
pub use upload::{Reservation, UploadRefused, reserve, sweep_abandoned};

/// Where a photo stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum PhotoState {
    /// Reserved; its bytes are arriving.
    Uploading,
    /// Stored; its image-resize job is making the sizes.
    Processing,
    /// Its sizes exist.
    Ready,
    /// It could not be used (`error` says why).
    Failed,
}

/// The state of `user_id`'s photo `photo_id`; `None` if there is none, or
/// its account is being deleted.
pub async fn state(
    db: impl PgExecutor<'_>,
    photo_id: Uuid,
    user_id: Uuid,
) -> Result<Option<PhotoState>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select state as "state: PhotoState" from photos
           where photo_id = $1 and user_id = $2
             and exists (select 1 from users
                         where users.user_id = $2 and users.deleting_since is null)"#,
        photo_id,
        user_id,
    )
    .fetch_optional(db)
    .await
}

/// The stored file's content type, for its owner only, once it is stored.
pub async fn original_content_type(
    db: impl PgExecutor<'_>,
    photo_id: Uuid,
    owner: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "select content_type from photos where photo_id = $1 and user_id = $2 and state <> 'uploading'",
        photo_id,
        owner,
    )
    .fetch_optional(db)
    .await
}
