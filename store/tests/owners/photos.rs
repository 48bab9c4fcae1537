use std::time::Duration;

use platform::config::UploadLimits;
use sqlx::PgPool;
use store::photos;
use store::photos::{PhotoState, Reservation, UploadRefused};
use testkit::postgres::migrated_pool;
use testkit::wait;
use uuid::Uuid;

use super::{rows_of, user};

const NO_LIMITS: UploadLimits = UploadLimits {
    per_hour: 0,
    quota_bytes: 0,
    max_concurrent: 1,
    max_concurrent_per_account: 0,
};

async fn reserve(
    pool: &PgPool,
    owner: Uuid,
    limits: &UploadLimits,
) -> Result<Reservation, UploadRefused> {
    photos::reserve(pool, owner, Uuid::now_v7(), "image/jpeg", limits).await
}

/// A photo reserved and committed with `bytes`: `processing`.
async fn committed(pool: &PgPool, owner: Uuid, bytes: u64) -> Uuid {
    let reservation = reserve(pool, owner, &NO_LIMITS).await.expect("reserved");
    let id = reservation.photo_id;
    let mut tx = pool.begin().await.expect("a transaction");
    reservation
        .commit(&mut tx, bytes, 0)
        .await
        .expect("committed");
    tx.commit().await.expect("committed");
    id
}

async fn state(pool: &PgPool, photo: Uuid, owner: Uuid) -> Option<PhotoState> {
    photos::state(pool, photo, owner).await.expect("read")
}

async fn avatar(pool: &PgPool, owner: Uuid) -> Option<Uuid> {
    sqlx::query_scalar("select avatar_photo_id from users where user_id = $1")
        .bind(owner)
        .fetch_one(pool)
        .await
        .expect("read")
}

#[tokio::test]
async fn a_photo_goes_from_uploading_to_processing_to_ready_and_becomes_the_avatar() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "flow@example.com").await;
    let reservation = reserve(&pool, owner, &NO_LIMITS).await.expect("reserved");
    let id = reservation.photo_id;
    assert_eq!(state(&pool, id, owner).await, Some(PhotoState::Uploading));
    assert_eq!(
        photos::original_content_type(&pool, id, owner)
            .await
            .expect("read"),
        None,
        "an upload in progress cannot be served"
    );

    let mut tx = pool.begin().await.expect("a transaction");
    reservation
        .commit(&mut tx, 1234, 0)
        .await
        .expect("committed");
    tx.commit().await.expect("committed");
    assert_eq!(state(&pool, id, owner).await, Some(PhotoState::Processing));

    let switched = photos::mark_ready(&pool, id, owner, (800, 600))
        .await
        .expect("ready");
    assert!(switched);
    assert_eq!(state(&pool, id, owner).await, Some(PhotoState::Ready));
    assert_eq!(avatar(&pool, owner).await, Some(id));
    let other = user(&pool, "other@example.com").await;
    assert_eq!(state(&pool, id, other).await, None, "nobody else's");
}

#[tokio::test]
async fn a_reservation_dropped_without_commit_is_marked_failed() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "dropped@example.com").await;

    let reservation = reserve(&pool, owner, &NO_LIMITS).await.expect("reserved");
    let id = reservation.photo_id;
    assert_eq!(rows_of(&pool, "photos", owner).await, 1);
    drop(reservation);

    wait::until(
        "the dropped reservation's row to be marked failed",
        Duration::from_secs(10),
        || async { (state(&pool, id, owner).await == Some(PhotoState::Failed)).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_cancelled_reservation_leaves_no_row_and_no_upload_of_the_hour() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "cancelled@example.com").await;
    let limits = UploadLimits {
        per_hour: 1,
        ..NO_LIMITS
    };

    reserve(&pool, owner, &limits)
        .await
        .expect("reserved")
        .cancel()
        .await;

    assert_eq!(rows_of(&pool, "photos", owner).await, 0);
    reserve(&pool, owner, &limits)
        .await
        .expect("the hour's one upload is still there");
}

#[tokio::test]
async fn the_type_found_in_the_first_bytes_is_stored_at_commit() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "sniffed@example.com").await;
    let mut reservation = photos::reserve(
        &pool,
        owner,
        Uuid::now_v7(),
        "application/octet-stream",
        &NO_LIMITS,
    )
    .await
    .expect("reserved");
    let id = reservation.photo_id;

    reservation.identified_as("image/png");
    let mut tx = pool.begin().await.expect("a transaction");
    reservation.commit(&mut tx, 10, 0).await.expect("committed");
    tx.commit().await.expect("committed");

    let stored = photos::original_content_type(&pool, id, owner)
        .await
        .expect("read");
    assert_eq!(stored.as_deref(), Some("image/png"));
}

#[tokio::test]
async fn the_hourly_limit_refuses_a_reservation_and_says_how_long_to_wait() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "hourly@example.com").await;
    let limits = UploadLimits {
        per_hour: 1,
        ..NO_LIMITS
    };
    let first = reserve(&pool, owner, &limits)
        .await
        .expect("the first fits");

    let second = reserve(&pool, owner, &limits).await;

    match second {
        Err(UploadRefused::RateLimited { retry_after_secs }) => {
            assert!(
                (3590..=3600).contains(&retry_after_secs),
                "{retry_after_secs}"
            );
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    let first_id = first.photo_id;
    first.release().await;
    assert_eq!(
        state(&pool, first_id, owner).await,
        Some(PhotoState::Failed),
        "released at once"
    );
    assert!(
        matches!(
            reserve(&pool, owner, &limits).await,
            Err(UploadRefused::RateLimited { .. })
        ),
        "a failed upload still counts against the hour"
    );
}

#[tokio::test]
async fn an_account_may_have_only_so_many_uploads_in_progress_at_once() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "trickle@example.com").await;
    let limits = UploadLimits {
        max_concurrent_per_account: 2,
        ..NO_LIMITS
    };
    let first = reserve(&pool, owner, &limits).await.expect("one fits");
    let _second = reserve(&pool, owner, &limits).await.expect("two fit");

    match reserve(&pool, owner, &limits).await {
        Err(UploadRefused::TooManyInProgress { in_progress: 2 }) => {}
        other => panic!("expected too many in progress, got {other:?}"),
    }
    let other = user(&pool, "someone-else@example.com").await;
    reserve(&pool, other, &limits)
        .await
        .expect("another account is not held up");

    first.release().await;
    reserve(&pool, owner, &limits)
        .await
        .expect("a finished upload frees its place");
}

#[tokio::test]
async fn the_quota_is_checked_again_when_concurrent_uploads_commit() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "quota@example.com").await;
    let limits = UploadLimits {
        quota_bytes: 100,
        ..NO_LIMITS
    };
    // Both start while the account stores nothing: each may bring 100 bytes.
    let (a, b) = (
        reserve(&pool, owner, &limits).await.expect("reserved"),
        reserve(&pool, owner, &limits).await.expect("reserved"),
    );
    assert_eq!((a.quota_left, b.quota_left), (100, 100));

    let mut tx = pool.begin().await.expect("a transaction");
    a.commit(&mut tx, 80, limits.quota_bytes)
        .await
        .expect("fits");
    tx.commit().await.expect("committed");
    let mut tx = pool.begin().await.expect("a transaction");
    let refused = b.commit(&mut tx, 80, limits.quota_bytes).await;
    drop(tx);

    assert!(
        matches!(
            refused,
            Err(UploadRefused::QuotaExceeded { quota_bytes: 100 })
        ),
        "{refused:?}"
    );
    let next = reserve(&pool, owner, &limits).await.expect("room is left");
    assert_eq!(next.quota_left, 20, "what the committed photo left");
}

#[tokio::test]
async fn a_reservation_for_a_deleted_user_is_refused() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "deleted@example.com").await;
    store::users::delete(&pool, owner).await.expect("deleted");

    for limits in [
        NO_LIMITS,
        UploadLimits {
            per_hour: 5,
            ..NO_LIMITS
        },
    ] {
        let refused = reserve(&pool, owner, &limits).await;
        assert!(
            matches!(refused, Err(UploadRefused::UserGone)),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn a_ready_photo_is_never_failed_and_an_older_photo_never_takes_the_avatar_back() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "order@example.com").await;
    let (older, newer) = (
        committed(&pool, owner, 10).await,
        committed(&pool, owner, 10).await,
    );

    assert!(
        photos::mark_ready(&pool, newer, owner, (1, 1))
            .await
            .expect("ready")
    );
    assert!(
        !photos::mark_ready(&pool, older, owner, (1, 1))
            .await
            .expect("ready")
    );
    photos::mark_failed(&pool, older, "late duplicate")
        .await
        .expect("no-op");

    assert_eq!(avatar(&pool, owner).await, Some(newer));
    assert_eq!(state(&pool, older, owner).await, Some(PhotoState::Ready));
}

#[tokio::test]
async fn cleaning_takes_replaced_and_failed_photos_and_leaves_the_avatar_and_work_in_progress() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "clean@example.com").await;
    let replaced = committed(&pool, owner, 10).await;
    photos::mark_ready(&pool, replaced, owner, (1, 1))
        .await
        .expect("ready");
    let current = committed(&pool, owner, 10).await;
    photos::mark_ready(&pool, current, owner, (1, 1))
        .await
        .expect("ready");
    let failed = committed(&pool, owner, 10).await;
    photos::mark_failed(&pool, failed, "unreadable")
        .await
        .expect("failed");
    let processing = committed(&pool, owner, 10).await;
    let uploading = reserve(&pool, owner, &NO_LIMITS).await.expect("reserved");

    let young = photos::clean_stale(&pool, Duration::from_secs(3600), 100)
        .await
        .expect("cleaned");
    let mut cleaned = photos::clean_stale(&pool, Duration::ZERO, 100)
        .await
        .expect("cleaned");

    assert!(
        young.is_empty(),
        "nothing is past an hour's grace: {young:?}"
    );
    cleaned.sort();
    let mut expected = vec![replaced, failed];
    expected.sort();
    assert_eq!(cleaned, expected);
    let left = photos::existing(
        &pool,
        &[replaced, current, failed, processing, uploading.photo_id],
    )
    .await
    .expect("read");
    assert_eq!(left.len(), 3);
    assert!(left.contains(&current) && left.contains(&processing));
    uploading.release().await;
}

#[tokio::test]
async fn the_sweep_takes_only_uploads_older_than_any_upload_may_take() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "sweep@example.com").await;
    let stored = committed(&pool, owner, 10).await;
    let abandoned = reserve(&pool, owner, &NO_LIMITS).await.expect("reserved");
    let abandoned_id = abandoned.photo_id;
    // The process died mid-upload: nothing will release the row.
    std::mem::forget(abandoned);

    assert_eq!(
        photos::sweep_abandoned(&pool, Duration::from_secs(3600))
            .await
            .expect("swept"),
        0
    );
    assert_eq!(
        photos::sweep_abandoned(&pool, Duration::ZERO)
            .await
            .expect("swept"),
        1
    );

    assert_eq!(
        state(&pool, abandoned_id, owner).await,
        Some(PhotoState::Failed),
        "no longer in progress, still counted against the hour"
    );
    assert_eq!(
        state(&pool, stored, owner).await,
        Some(PhotoState::Processing),
        "a stored photo is not touched"
    );
}
