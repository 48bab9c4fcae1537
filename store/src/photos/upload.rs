//! An upload's life: its row reserved under the account's limits (checked
//! under a lock on the account's row, again at commit), committed for
//! processing, released or cancelled when it fails, and swept when it was
//! abandoned mid-way.

use std::time::Duration;

use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use platform::config::UploadLimits;

use crate::db::OnConstraint;
use crate::users;

/// Why an upload may not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum UploadRefused {
    /// The account reached its uploads per hour; it may try again then.
    #[error("too many uploads; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the oldest upload of the hour leaves the window.
        retry_after_secs: u64,
    },
    /// The account has as many uploads in progress as it may.
    #[error("{in_progress} uploads of this account are in progress")]
    TooManyInProgress {
        /// How many (the limit).
        in_progress: u32,
    },
    /// The account's photos use its whole quota (or would with this one).
    #[error("the storage quota of {quota_bytes} bytes is used up")]
    QuotaExceeded {
        /// The quota.
        quota_bytes: u64,
    },
    /// The user no longer exists (the token outlived the account).
    #[error("the user is gone")]
    UserGone,
    /// The reservation was swept before the upload committed.
    #[error("the reservation of photo {0} is gone")]
    ReservationGone(Uuid),
    /// Postgres failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A reserved `uploading` row, marked `failed` unless it is committed: an
/// upload that fails or is abandoned leaves no row in progress behind.
/// Reserved when the upload starts, before its first byte is read, so the
/// account's uploads in progress are capped while their bytes arrive.
#[derive(Debug)]
pub struct Reservation {
    pool: Option<PgPool>,
    /// Written at commit: the type may be known only once bytes arrive.
    content_type: String,
    /// The photo being uploaded.
    pub photo_id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// How many more bytes the account may store (`u64::MAX`: no quota).
    pub quota_left: u64,
}

/// Reserves the photo's row (`uploading`), if the account may upload now.
/// `content_type` is what the photo is known to be so far (the route's
/// `application/octet-stream` until [`Reservation::identified_as`]).
pub async fn reserve(
    pool: &PgPool,
    user_id: Uuid,
    photo_id: Uuid,
    content_type: &str,
    limits: &UploadLimits,
) -> Result<Reservation, UploadRefused> {
    let mut tx = pool.begin().await?;
    let unlimited =
        limits.per_hour == 0 && limits.quota_bytes == 0 && limits.max_concurrent_per_account == 0;
    let quota_left = if unlimited {
        u64::MAX
    } else {
        if !users::lock(&mut tx, user_id).await? {
            return Err(UploadRefused::UserGone);
        }
        check_usage(&mut tx, user_id, limits).await?
    };
    sqlx::query!(
        "insert into photos (photo_id, user_id, state, content_type, bytes)
         values ($1, $2, 'uploading', $3, 0)",
        photo_id,
        user_id,
        content_type,
    )
    .execute(&mut *tx)
    .await
    .on_constraint("photos_user_id_fkey", || UploadRefused::UserGone)?;
    tx.commit().await?;
    Ok(Reservation {
        pool: Some(pool.clone()),
        content_type: content_type.to_owned(),
        photo_id,
        user_id,
        quota_left,
    })
}

/// How many more bytes the account may store, if it may upload now.
async fn check_usage(
    conn: &mut PgConnection,
    user_id: Uuid,
    limits: &UploadLimits,
) -> Result<u64, UploadRefused> {
    let usage = sqlx::query!(
        r#"select count(*) filter (where created_at > now() - interval '1 hour') as "recent!",
                  count(*) filter (where state = 'uploading') as "in_progress!",
                  coalesce(sum(bytes) filter (where state <> 'uploading'), 0)::bigint as "stored!",
                  extract(epoch from min(created_at) filter (where created_at > now() - interval '1 hour')
                                     + interval '1 hour' - now())::float8 as "retry_after"
           from photos where user_id = $1"#,
        user_id,
    )
    .fetch_one(conn)
    .await?;
    if limits.per_hour > 0 && usage.recent >= i64::from(limits.per_hour) {
        let retry_after = usage.retry_after.unwrap_or(60.0).ceil().max(1.0);
        return Err(UploadRefused::RateLimited {
            retry_after_secs: retry_after as u64,
        });
    }
    let most = limits.max_concurrent_per_account;
    if most > 0 && usage.in_progress >= i64::from(most) {
        return Err(UploadRefused::TooManyInProgress { in_progress: most });
    }
    let stored = u64::try_from(usage.stored).unwrap_or(0);
    if limits.quota_bytes == 0 {
        Ok(u64::MAX)
    } else if stored >= limits.quota_bytes {
        Err(UploadRefused::QuotaExceeded {
            quota_bytes: limits.quota_bytes,
        })
    } else {
        Ok(limits.quota_bytes - stored)
    }
}

impl Reservation {
    /// The photo's type, found in its first bytes; stored at commit.
    pub fn identified_as(&mut self, content_type: &str) {
        content_type.clone_into(&mut self.content_type);
    }

    /// `uploading → processing` with its size and type, inside the caller's
    /// transaction (which records the image-resize job with it), if the
    /// account's quota still has room. The row is the caller's from here:
    /// if the transaction does not commit, [`sweep_abandoned`] removes it.
    pub async fn commit(
        mut self,
        conn: &mut PgConnection,
        bytes: u64,
        quota_bytes: u64,
    ) -> Result<(), UploadRefused> {
        let (user_id, photo_id) = (self.user_id, self.photo_id);
        if quota_bytes > 0 {
            if !users::lock(conn, user_id).await? {
                return Err(UploadRefused::UserGone);
            }
            let stored = sqlx::query_scalar!(
                r#"select coalesce(sum(bytes), 0)::bigint as "stored!" from photos
                   where user_id = $1 and state <> 'uploading'"#,
                user_id,
            )
            .fetch_one(&mut *conn)
            .await?;
            if u64::try_from(stored).unwrap_or(0).saturating_add(bytes) > quota_bytes {
                return Err(UploadRefused::QuotaExceeded { quota_bytes });
            }
        }
        let updated = sqlx::query!(
            "update photos set state = 'processing', bytes = $2, content_type = $3, updated_at = now()
             where photo_id = $1 and state = 'uploading'",
            photo_id,
            i64::try_from(bytes).unwrap_or(i64::MAX),
            self.content_type,
        )
        .execute(&mut *conn)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(UploadRefused::ReservationGone(photo_id));
        }
        self.pool = None;
        Ok(())
    }

    /// Marks the row `failed` now (the upload failed and the caller is
    /// still answering), so a retry sees the account's real usage: one
    /// upload fewer in progress, one more this hour, no bytes stored.
    pub async fn release(mut self) {
        if let Some(pool) = self.pool.take() {
            release(&pool, self.photo_id).await;
        }
    }

    /// Removes the row: the upload was refused before a byte of it was read
    /// (the instance had no upload slot free), so it is no upload of the
    /// account's and does not count against its hour. A failure leaves the
    /// row to [`sweep_abandoned`].
    pub async fn cancel(mut self) {
        let Some(pool) = self.pool.take() else {
            return;
        };
        let deleted = sqlx::query!(
            "delete from photos where photo_id = $1 and state = 'uploading'",
            self.photo_id,
        )
        .execute(&pool)
        .await;
        if let Err(error) = deleted {
            tracing::warn!(%error, photo_id = %self.photo_id, "could not remove a cancelled upload's row");
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let Some(pool) = self.pool.take() else {
            return;
        };
        // Dropped with the request (the client went away): clean up on the
        // side. Without a runtime (the process is stopping) the sweep of
        // abandoned uploads marks the row instead.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let photo_id = self.photo_id;
        runtime.spawn(async move { release(&pool, photo_id).await });
    }
}

/// Why an upload's row is `failed` when the upload itself failed.
const NOT_COMPLETED: &str = "the upload did not complete";

async fn release(pool: &PgPool, photo_id: Uuid) {
    let failed = sqlx::query!(
        "update photos set state = 'failed', error = $2, updated_at = now()
         where photo_id = $1 and state = 'uploading'",
        photo_id,
        NOT_COMPLETED,
    )
    .execute(pool)
    .await;
    if let Err(error) = failed {
        tracing::warn!(%error, %photo_id, "could not mark an abandoned upload's row failed");
    }
}

/// Marks `failed` the `uploading` rows older than any upload may take (left
/// by a crash mid-upload), so they stop counting as in progress; they still
/// count against their account's hour, like any failed upload.
pub async fn sweep_abandoned(
    db: impl PgExecutor<'_>,
    older_than: Duration,
) -> Result<u64, sqlx::Error> {
    let swept = sqlx::query!(
        "update photos set state = 'failed', error = $2, updated_at = now()
         where state = 'uploading' and created_at < now() - make_interval(secs => $1)",
        older_than.as_secs_f64(),
        NOT_COMPLETED,
    )
    .execute(db)
    .await?;
    Ok(swept.rows_affected())
}
