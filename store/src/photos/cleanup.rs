//! What may go: replaced and failed photos past their grace period, the
//! rows behind files in storage, and every photo of an account for its
//! deletion.

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::PgExecutor;
use uuid::Uuid;

/// Deletes up to `batch` replaced (ready, nobody's avatar) and failed
/// photos older than `grace`, and returns their ids: the caller deletes
/// their files. A row goes before its files, so a failed file deletion
/// leaves an orphan file (found by [`existing`]), never a row pointing at
/// nothing.
pub async fn clean_stale(
    db: impl PgExecutor<'_>,
    grace: Duration,
    batch: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "delete from photos p
         where p.photo_id in (
             select photo_id from photos
             where created_at < now() - make_interval(secs => $1)
               and (state = 'failed'
                    or (state = 'ready'
                        and not exists (select 1 from users u where u.avatar_photo_id = photos.photo_id)))
             limit $2)
         returning p.photo_id",
        grace.as_secs_f64(),
        batch,
    )
    .fetch_all(db)
    .await
}

/// Which of `ids` have a row (the rest name orphan files).
pub async fn existing(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<BTreeSet<Uuid>, sqlx::Error> {
    let known = sqlx::query_scalar!("select photo_id from photos where photo_id = any($1)", ids)
        .fetch_all(db)
        .await?;
    Ok(known.into_iter().collect())
}

/// Every photo of `user_id`, whatever its state: account deletion removes
/// their files before their rows.
pub async fn ids_of_user(db: impl PgExecutor<'_>, user_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("select photo_id from photos where user_id = $1", user_id)
        .fetch_all(db)
        .await
}
