use std::time::Duration;

use catalogue::QueueName;
use platform::config::LoginFailureLimit;
use store::records::Origin;
use store::users::{CreateError, LoginAttempt, NewAccount};
use store::{photos, records, tokens, users};
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
async fn at_most_the_limit_of_concurrent_attempts_is_counted_and_a_success_clears_them() {
    let pool = migrated_pool().await;
    let id = user(&pool, "locked@example.com").await;
    let limit = LoginFailureLimit {
        max: 5,
        window: Duration::from_secs(3600),
    };

    let attempts = futures::future::join_all(
        (0..40).map(|_| users::begin_login_attempt(&pool, "LOCKED@example.com", limit)),
    )
    .await;

    let attempts: Vec<LoginAttempt> = attempts.into_iter().map(|a| a.expect("read")).collect();
    let counted = attempts
        .iter()
        .filter(|a| matches!(a, LoginAttempt::Counted { .. }))
        .count();
    assert_eq!(counted, 5, "exactly the limit gets to the hash");
    for attempt in &attempts {
        match attempt {
            LoginAttempt::Counted { user_id, .. } => assert_eq!(*user_id, id),
            LoginAttempt::Locked { user_id, for_secs } => {
                assert_eq!(*user_id, id);
                assert!((3500.0..=3600.0).contains(for_secs), "{for_secs}");
            }
            LoginAttempt::NoAccount => panic!("the account exists"),
        }
    }

    users::clear_login_failures(&pool, id)
        .await
        .expect("cleared");
    let after = users::begin_login_attempt(&pool, "locked@example.com", limit)
        .await
        .expect("read");
    assert!(
        matches!(after, LoginAttempt::Counted { failures: 1, .. }),
        "{after:?}"
    );
    let unknown = users::begin_login_attempt(&pool, "nobody@example.com", limit)
        .await
        .expect("read");
    assert_eq!(unknown, LoginAttempt::NoAccount);
}

#[tokio::test]
async fn an_attempt_after_the_window_starts_a_new_window() {
    let pool = migrated_pool().await;
    let id = user(&pool, "window@example.com").await;
    let limit = LoginFailureLimit {
        max: 1,
        window: Duration::from_secs(3600),
    };
    users::begin_login_attempt(&pool, "window@example.com", limit)
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

    let attempt = users::begin_login_attempt(&pool, "window@example.com", limit)
        .await
        .expect("counted");

    assert!(
        matches!(attempt, LoginAttempt::Counted { failures: 1, .. }),
        "the old window's failures do not count: {attempt:?}"
    );
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
        let limits = platform::config::UploadLimits {
            per_hour: 0,
            quota_bytes: 0,
            max_concurrent: 1,
            max_concurrent_per_account: 0,
        };
        let photo = photos::reserve(&pool, owner, Uuid::now_v7(), "image/png", &limits)
            .await
            .expect("reserved");
        let mut tx = pool.begin().await.expect("a transaction");
        photo.commit(&mut tx, 10, 0).await.expect("committed");
        let record = records::NewRecord {
            job_id: Uuid::now_v7(),
            owner: Some(owner),
            queue: QueueName::WelcomeEmail,
            payload: &serde_json::json!({}),
            max_attempts: 1,
            delay: None,
        };
        records::insert(&mut tx, record, &Origin::default())
            .await
            .expect("recorded");
        tx.commit().await.expect("committed");
    }
    let files = photos::ids_of_user(&pool, gone).await.expect("listed");
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
