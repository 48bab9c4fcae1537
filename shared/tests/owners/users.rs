use std::time::Duration;

use shared::config::LoginFailureLimit;
use shared::jobs::QueueName;
use shared::records::{self, Origin};
use shared::users::{self, CreateError, NewAccount};
use shared::{photos, tokens};
use testkit::postgres::migrated_pool;
use uuid::Uuid;

use super::{rows_of, user};

#[tokio::test]
async fn an_address_has_one_account_in_any_letter_case() {
    let pool = migrated_pool().await;
    user(&pool, "Ada@Example.com").await;
    let mut conn = pool.acquire().await.expect("a connection");

    let second = users::create(
        &mut conn,
        NewAccount {
            id: Uuid::now_v7(),
            email: "ada@example.COM",
            name: "Impostor",
            password_hash: "x",
        },
    )
    .await;

    assert!(matches!(second, Err(CreateError::EmailTaken)), "{second:?}");
}

#[tokio::test]
async fn failed_logins_lock_the_account_for_the_window_and_a_success_clears_them() {
    let pool = migrated_pool().await;
    let id = user(&pool, "locked@example.com").await;
    let limit = LoginFailureLimit {
        max: 2,
        window: Duration::from_secs(3600),
    };

    for expected in 1..=2 {
        let count = users::record_login_failure(&pool, id, limit.window)
            .await
            .expect("counted");
        assert_eq!(count, expected);
    }
    let locked = users::login_candidate(&pool, "LOCKED@example.com", limit)
        .await
        .expect("read")
        .expect("found in any letter case");
    let seconds = locked.locked_for.expect("locked");
    assert!((3500.0..=3600.0).contains(&seconds), "{seconds}");

    users::clear_login_failures(&pool, id)
        .await
        .expect("cleared");
    let open = users::login_candidate(&pool, "locked@example.com", limit)
        .await
        .expect("read")
        .expect("found");
    assert_eq!((open.failures, open.locked_for), (0, None));
}

#[tokio::test]
async fn a_failure_after_the_window_starts_a_new_window() {
    let pool = migrated_pool().await;
    let id = user(&pool, "window@example.com").await;
    let window = Duration::from_secs(3600);
    users::record_login_failure(&pool, id, window)
        .await
        .expect("counted");
    // Arrange: the window ended.
    sqlx::query(
        "update users set login_failures_since = now() - interval '2 hours' where user_id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .expect("aged");

    let count = users::record_login_failure(&pool, id, window)
        .await
        .expect("counted");

    assert_eq!(count, 1, "the old window's failures do not count");
}

#[tokio::test]
async fn a_stripe_customer_is_recorded_once() {
    let pool = migrated_pool().await;
    let id = user(&pool, "stripe@example.com").await;

    assert!(
        users::set_stripe_customer(&pool, id, "cus_first")
            .await
            .expect("set")
    );
    assert!(
        !users::set_stripe_customer(&pool, id, "cus_second")
            .await
            .expect("kept")
    );

    let recorded: Option<String> =
        sqlx::query_scalar("select stripe_customer_id from users where user_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("read");
    assert_eq!(recorded.as_deref(), Some("cus_first"));
}

#[tokio::test]
async fn deleting_a_user_removes_its_tokens_photos_and_job_records_with_it() {
    let pool = migrated_pool().await;
    let (gone, stays) = (
        user(&pool, "gone@example.com").await,
        user(&pool, "stays@example.com").await,
    );
    for (byte, owner) in [(1, gone), (2, stays)] {
        tokens::issue(&pool, owner, &[byte; 32])
            .await
            .expect("issued");
        let limits = shared::config::UploadLimits {
            per_hour: 0,
            quota_bytes: 0,
            max_concurrent: 1,
        };
        let photo = photos::reserve(&pool, owner, Uuid::now_v7(), "image/png", &limits)
            .await
            .expect("reserved");
        let mut tx = pool.begin().await.expect("a transaction");
        photo.commit(&mut tx, 10, 0).await.expect("committed");
        records::insert(
            &mut tx,
            Uuid::now_v7(),
            owner,
            QueueName::WelcomeEmail,
            &serde_json::json!({}),
            1,
            &Origin::default(),
        )
        .await
        .expect("recorded");
        tx.commit().await.expect("committed");
    }
    let files = photos::remove_all_of_user(&pool, gone)
        .await
        .expect("listed");
    assert_eq!(files.len(), 1, "the photo whose files must go");

    assert!(users::delete(&pool, gone).await.expect("deleted"));

    for table in ["users", "api_tokens", "photos", "jobs"] {
        assert_eq!(rows_of(&pool, table, gone).await, 0, "{table}");
        assert_eq!(
            rows_of(&pool, table, stays).await,
            1,
            "{table} of another user"
        );
    }
}
