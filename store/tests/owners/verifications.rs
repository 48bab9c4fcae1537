use std::time::Duration;

use sqlx::PgPool;
use store::tokens::TokenHash;
use store::users;
use store::verifications::{self, Proof};
use testkit::postgres::migrated_pool;
use uuid::Uuid;

use super::user;

const HOUR: Duration = Duration::from_secs(3600);

/// The credentials' epoch of `user_id` now.
async fn epoch(pool: &PgPool, user_id: Uuid) -> i64 {
    users::standing(pool, user_id)
        .await
        .expect("read")
        .expect("a live account")
        .epoch
}

/// Stores a link proving `email` for `user_id` at its current epoch.
async fn issue(pool: &PgPool, user_id: Uuid, email: &str, hash: &TokenHash) {
    let now = epoch(pool, user_id).await;
    assert!(
        verifications::issue(pool, user_id, now, email, hash, HOUR)
            .await
            .expect("read"),
        "issued"
    );
}

/// Follows the link `hash`, committing what it spends.
async fn consume(pool: &PgPool, hash: &TokenHash) -> Option<Proof> {
    let mut tx = pool.begin().await.expect("a transaction");
    let proof = verifications::consume(&mut tx, hash).await.expect("read");
    tx.commit().await.expect("committed");
    proof
}

#[tokio::test]
async fn a_link_is_consumed_once_and_spends_the_accounts_other_links_for_that_address_only() {
    let pool = migrated_pool().await;
    let id = user(&pool, "ada@example.com").await;
    let (first, again, other_address) = ([1_u8; 32], [2_u8; 32], [3_u8; 32]);
    issue(&pool, id, "ada@example.com", &first).await;
    issue(&pool, id, "ADA@example.com", &again).await;
    issue(&pool, id, "new@example.com", &other_address).await;

    let proof = consume(&pool, &first).await;

    assert_eq!(
        proof,
        Some(Proof {
            user_id: id,
            email: "ada@example.com".to_owned()
        })
    );
    assert_eq!(consume(&pool, &first).await, None, "only once");
    assert_eq!(consume(&pool, &again).await, None, "same address, any case");
    assert_eq!(
        consume(&pool, &other_address).await.map(|p| p.email),
        Some("new@example.com".to_owned()),
        "a link for another address stays open"
    );
}

#[tokio::test]
async fn a_link_asked_for_before_the_password_changed_is_void() {
    let pool = migrated_pool().await;
    let id = user(&pool, "stale@example.com").await;
    let asked_under = epoch(&pool, id).await;
    let link = [1_u8; 32];
    issue(&pool, id, "stale@example.com", &link).await;

    assert!(
        users::set_password(&pool, id, "new-hash")
            .await
            .expect("ok")
    );

    assert_eq!(consume(&pool, &link).await, None);
    let late = verifications::issue(&pool, id, asked_under, "x@example.com", &[2; 32], HOUR)
        .await
        .expect("read");
    assert!(!late, "asked at a stale epoch: nothing is sent");
}

#[tokio::test]
async fn an_account_being_deleted_gets_no_link_and_cannot_use_one() {
    let pool = migrated_pool().await;
    let id = user(&pool, "leaving@example.com").await;
    let link = [1_u8; 32];
    issue(&pool, id, "leaving@example.com", &link).await;
    let epoch_before = epoch(&pool, id).await;

    assert!(users::begin_deletion(&pool, id).await.expect("ok"));

    assert_eq!(consume(&pool, &link).await, None);
    let epoch_now: i64 =
        sqlx::query_scalar("select credentials_epoch from users where user_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("read");
    assert!(epoch_now > epoch_before);
    let issued = verifications::issue(&pool, id, epoch_now, "leaving@example.com", &[2; 32], HOUR)
        .await
        .expect("read");
    assert!(!issued, "even at the current epoch");
}

#[tokio::test]
async fn a_link_followed_again_soon_names_its_account_once_the_address_is_proven() {
    let pool = migrated_pool().await;
    let id = user(&pool, "twice@example.com").await;
    let link = [1_u8; 32];
    issue(&pool, id, "twice@example.com", &link).await;
    consume(&pool, &link).await.expect("spent");

    assert_eq!(
        verifications::proven_by(&pool, &link).await.expect("read"),
        None,
        "spent, but the address is not proven yet"
    );
    assert!(
        users::mark_verified(&pool, id, "twice@example.com")
            .await
            .expect("ok")
    );
    assert_eq!(
        verifications::proven_by(&pool, &link).await.expect("read"),
        Some(id)
    );
    // Arrange: the window for a second click passes.
    sqlx::query("update email_verifications set used_at = now() - interval '11 minutes'")
        .execute(&pool)
        .await
        .expect("aged");
    assert_eq!(
        verifications::proven_by(&pool, &link).await.expect("read"),
        None
    );
}

#[tokio::test]
async fn an_expired_link_is_refused_and_purged_with_the_spent_ones_while_a_live_one_stays() {
    let pool = migrated_pool().await;
    let id = user(&pool, "expiry@example.com").await;
    let (expired, spent, live) = ([1_u8; 32], [2_u8; 32], [3_u8; 32]);
    issue(&pool, id, "old@example.com", &expired).await;
    issue(&pool, id, "spent@example.com", &spent).await;
    issue(&pool, id, "live@example.com", &live).await;
    // Arrange: time passes for one of them.
    sqlx::query(
        "update email_verifications set expires_at = now() - interval '1 second'
         where token_hash = $1",
    )
    .bind(&expired[..])
    .execute(&pool)
    .await
    .expect("aged");
    assert_eq!(consume(&pool, &expired).await, None, "expired");
    consume(&pool, &spent).await.expect("spent");

    assert_eq!(verifications::purge_spent(&pool).await.expect("ok"), 2);
    assert!(consume(&pool, &live).await.is_some(), "the live one stays");
}
