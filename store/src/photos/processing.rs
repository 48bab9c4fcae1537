//! What the resize job records: a photo ready in its sizes, or failed
//! with a reason.

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::users;

/// `processing | failed → ready` with the original's size, and the owner's
/// avatar switched to it unless a newer photo is the avatar, in one
/// transaction. Returns whether the avatar switched.
pub async fn mark_ready(
    pool: &PgPool,
    photo_id: Uuid,
    user_id: Uuid,
    (width, height): (u32, u32),
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "update photos set state = 'ready', width = $2, height = $3, error = null, updated_at = now()
         where photo_id = $1 and state in ('processing', 'failed', 'ready')",
        photo_id,
        i32::try_from(width).unwrap_or(i32::MAX),
        i32::try_from(height).unwrap_or(i32::MAX),
    )
    .execute(&mut *tx)
    .await?;
    let switched = users::switch_avatar(&mut tx, user_id, photo_id).await?;
    tx.commit().await?;
    Ok(switched)
}

/// `processing → failed` with the reason, in the uploader's words. A photo
/// already `ready` stays so.
pub async fn mark_failed(
    db: impl PgExecutor<'_>,
    photo_id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update photos set state = 'failed', error = $2, updated_at = now()
         where photo_id = $1 and state in ('processing', 'failed')",
        photo_id,
        reason,
    )
    .execute(db)
    .await?;
    Ok(())
}
