use std::time::Duration;

use sqlx::PgPool;
use store::resets;
use store::tokens::TokenHash;
use store::users;
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

/// Follows the link `hash`, committing what it spends.
async fn consume(pool: &PgPool, hash: &TokenHash) -> Option<Uuid> {
    let mut tx = pool.begin().await.expect("a transaction");
    let owner = resets::consume(&mut tx, hash).await.expect("read");
    tx.commit().await.expect("committed");
    owner
}

/// A user whose address is proven.
async fn verified(pool: &PgPool, email: &str) -> Uuid {
    let id = user(pool, email).await;
    assert!(users::mark_verified(pool, id, email).await.expect("ok"));
    id
}

#[tokio::test]
async fn a_reset_link_is_consumed_once_and_spends_every_other_link_of_the_account() {
    let pool = migrated_pool().await;
    let id = verified(&pool, "reset@example.com").await;
    let now = epoch(&pool, id).await;
    let (first, second) = ([1_u8; 32], [2_u8; 32]);
    for hash in [&first, &second] {
        let sent_to = resets::issue(&pool, id, now, hash, HOUR)
            .await
            .expect("issued");
        assert_eq!(sent_to.as_deref(), Some("reset@example.com"));
    }

    assert_eq!(consume(&pool, &first).await, Some(id));
    assert_eq!(consume(&pool, &first).await, None, "only once");
    assert_eq!(consume(&pool, &second).await, None, "spent with the first");
    assert_eq!(consume(&pool, &[9; 32]).await, None, "never issued");
}

#[tokio::test]
async fn a_link_is_void_once_a_verified_accounts_password_moved_on() {
    let pool = migrated_pool().await;
    let id = verified(&pool, "stale@example.com").await;
    let asked_under = epoch(&pool, id).await;
    let link = [1_u8; 32];
    resets::issue(&pool, id, asked_under, &link, HOUR)
        .await
        .expect("issued");

    assert!(
        users::set_password(&pool, id, "new-hash")
            .await
            .expect("ok")
    );

    assert_eq!(consume(&pool, &link).await, None, "a stale epoch");
    let late = resets::issue(&pool, id, asked_under, &[2; 32], HOUR)
        .await
        .expect("read");
    assert_eq!(late, None, "asked before the change: nothing is sent");
}

#[tokio::test]
async fn an_unproven_accounts_link_survives_a_password_change_but_not_a_new_address() {
    let pool = migrated_pool().await;
    let id = user(&pool, "squatted@example.com").await;
    let asked_under = epoch(&pool, id).await;
    let (kept, moved) = ([1_u8; 32], [2_u8; 32]);
    resets::issue(&pool, id, asked_under, &kept, HOUR)
        .await
        .expect("issued");

    // A squatter who knows the password changes it.
    assert!(
        users::set_password(&pool, id, "squatter")
            .await
            .expect("ok")
    );
    assert_eq!(
        consume(&pool, &kept).await,
        Some(id),
        "the address's owner can still take it back"
    );

    resets::issue(&pool, id, epoch(&pool, id).await, &moved, HOUR)
        .await
        .expect("issued");
    // Arrange: the address moved without a proof, so only the address
    // binding stands between the link and the account.
    sqlx::query("update users set email = 'elsewhere@example.com' where user_id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .expect("moved");
    assert_eq!(
        consume(&pool, &moved).await,
        None,
        "sent to another address"
    );
}

#[tokio::test]
async fn an_account_being_deleted_gets_no_link_and_cannot_use_one() {
    let pool = migrated_pool().await;
    let id = verified(&pool, "leaving@example.com").await;
    let now = epoch(&pool, id).await;
    let link = [1_u8; 32];
    resets::issue(&pool, id, now, &link, HOUR)
        .await
        .expect("issued");

    assert!(users::begin_deletion(&pool, id).await.expect("ok"));

    assert_eq!(consume(&pool, &link).await, None);
    let issued = resets::issue(
        &pool,
        id,
        epoch_while_deleting(&pool, id).await,
        &[2; 32],
        HOUR,
    )
    .await
    .expect("read");
    assert_eq!(issued, None);
}

/// The epoch of an account being deleted, which `standing` no longer shows.
async fn epoch_while_deleting(pool: &PgPool, user_id: Uuid) -> i64 {
    sqlx::query_scalar("select credentials_epoch from users where user_id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await
        .expect("read")
}

#[tokio::test]
async fn an_expired_link_is_refused_and_purged_with_the_spent_ones_while_a_live_one_stays() {
    let pool = migrated_pool().await;
    let (ada, bob) = (
        verified(&pool, "ada@example.com").await,
        verified(&pool, "bob@example.com").await,
    );
    let (expired, spent, sibling) = ([1_u8; 32], [2_u8; 32], [3_u8; 32]);
    for (owner, hash) in [(ada, &expired), (bob, &spent), (bob, &sibling)] {
        let now = epoch(&pool, owner).await;
        resets::issue(&pool, owner, now, hash, HOUR)
            .await
            .expect("issued");
    }
    // Arrange: time passes for one of them.
    sqlx::query(
        "update password_resets set expires_at = now() - interval '1 second'
         where token_hash = $1",
    )
    .bind(&expired[..])
    .execute(&pool)
    .await
    .expect("aged");
    assert_eq!(consume(&pool, &expired).await, None, "expired");
    assert_eq!(consume(&pool, &spent).await, Some(bob));
    // Spending a link spends the account's others: issue a fresh one.
    resets::issue(&pool, bob, epoch(&pool, bob).await, &[4; 32], HOUR)
        .await
        .expect("issued");

    assert_eq!(resets::purge_spent(&pool).await.expect("purged"), 3);
    assert_eq!(
        consume(&pool, &[4; 32]).await,
        Some(bob),
        "the live one stays"
    );
}
