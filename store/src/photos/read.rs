//! Reads of the `photos` row its owner offers (it writes nothing here): a
//! photo's state and stored type, which files have a row, and every photo
//! of an account for its deletion.

use std::collections::BTreeSet;

use sqlx::PgExecutor;
use uuid::Uuid;

use super::PhotoState;

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
