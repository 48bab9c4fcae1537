use chrono::{DateTime, TimeZone, Utc};
use sqlx::PgPool;
use store::subscriptions::{self, Applied, Subscription};
use testkit::postgres::migrated_pool;
use uuid::Uuid;

use super::user;

/// The subscription `sub_1` in `status`.
fn state(status: &str) -> Subscription {
    Subscription {
        subscription_id: "sub_1".to_owned(),
        status: status.to_owned(),
        price_id: Some("price_1".to_owned()),
        current_period_end: None,
        cancel_at_period_end: false,
    }
}

/// Stripe's time of an event, `second` seconds into the test.
fn at(second: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + second, 0)
        .single()
        .expect("a time")
}

/// Applies `state` as of `created`, committing.
async fn apply(pool: &PgPool, user_id: Uuid, state: &Subscription, created: i64) -> Applied {
    let mut tx = pool.begin().await.expect("a transaction");
    let applied = subscriptions::apply(&mut tx, user_id, state, at(created))
        .await
        .expect("read");
    tx.commit().await.expect("committed");
    applied
}

async fn current(pool: &PgPool, user_id: Uuid) -> Option<String> {
    subscriptions::current_of_user(pool, user_id)
        .await
        .expect("read")
        .map(|subscription| subscription.status)
}

#[tokio::test]
async fn a_newer_event_overwrites_the_state_and_an_older_one_never_does() {
    let pool = migrated_pool().await;
    let id = user(&pool, "sub@example.com").await;

    assert_eq!(
        apply(&pool, id, &state("incomplete"), 1).await,
        Applied::Written
    );
    assert_eq!(
        apply(&pool, id, &state("canceled"), 5).await,
        Applied::Written
    );
    let late = apply(&pool, id, &state("active"), 3).await;

    assert_eq!(late, Applied::Newer, "a late update never undoes a cancel");
    assert_eq!(current(&pool, id).await.as_deref(), Some("canceled"));
}

#[tokio::test]
async fn the_same_state_of_the_same_second_is_nothing_new_and_another_is_a_tie() {
    let pool = migrated_pool().await;
    let id = user(&pool, "tie@example.com").await;
    apply(&pool, id, &state("incomplete"), 1).await;

    assert_eq!(
        apply(&pool, id, &state("incomplete"), 1).await,
        Applied::Same
    );
    assert_eq!(
        apply(&pool, id, &state("active"), 1).await,
        Applied::Tie(state("incomplete")),
        "which of the two is later cannot be told"
    );
    assert_eq!(current(&pool, id).await.as_deref(), Some("incomplete"));
}

#[tokio::test]
async fn a_tie_is_settled_with_the_answer_unless_a_newer_event_was_written_meanwhile() {
    let pool = migrated_pool().await;
    let id = user(&pool, "settle@example.com").await;
    apply(&pool, id, &state("incomplete"), 1).await;

    let mut conn = pool.acquire().await.expect("a connection");
    assert!(
        subscriptions::settle(&mut conn, id, &state("active"), at(1))
            .await
            .expect("ok")
    );
    assert_eq!(current(&pool, id).await.as_deref(), Some("active"));

    apply(&pool, id, &state("past_due"), 9).await;
    assert!(
        !subscriptions::settle(&mut conn, id, &state("active"), at(1))
            .await
            .expect("ok"),
        "an older answer"
    );
    assert_eq!(current(&pool, id).await.as_deref(), Some("past_due"));
}

#[tokio::test]
async fn a_user_is_shown_their_live_subscription_before_a_newer_ended_one() {
    let pool = migrated_pool().await;
    let (id, other) = (
        user(&pool, "two@example.com").await,
        user(&pool, "other@example.com").await,
    );
    let mut ended = state("canceled");
    ended.subscription_id = "sub_ended".to_owned();
    apply(&pool, id, &state("active"), 1).await;
    apply(&pool, id, &ended, 9).await;

    assert_eq!(current(&pool, id).await.as_deref(), Some("active"));
    assert_eq!(current(&pool, other).await, None, "only the user's own");
}
