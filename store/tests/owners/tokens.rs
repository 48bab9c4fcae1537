use store::tokens;
use testkit::postgres::migrated_pool;

use super::{rows_of, user};

#[tokio::test]
async fn an_issued_token_is_found_until_it_is_revoked() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "token@example.com").await;
    let hash = [7_u8; 32];

    tokens::issue(&pool, owner, &hash).await.expect("issued");
    let session = tokens::find(&pool, &hash).await.expect("read");
    assert_eq!(session.map(|s| s.user_id), Some(owner));

    assert!(tokens::revoke(&pool, &hash).await.expect("revoked"));
    assert_eq!(tokens::find(&pool, &hash).await.expect("read"), None);
    assert!(
        !tokens::revoke(&pool, &hash).await.expect("revoked"),
        "only once"
    );
}

#[tokio::test]
async fn signing_out_everywhere_revokes_only_that_users_tokens() {
    let pool = migrated_pool().await;
    let (ada, bob) = (
        user(&pool, "ada@example.com").await,
        user(&pool, "bob@example.com").await,
    );
    for (owner, byte) in [(ada, 1), (ada, 2), (bob, 3)] {
        tokens::issue(&pool, owner, &[byte; 32])
            .await
            .expect("issued");
    }

    let revoked = tokens::revoke_all_of_user(&pool, ada)
        .await
        .expect("revoked");

    assert_eq!(revoked, 2);
    assert_eq!(rows_of(&pool, "api_tokens", ada).await, 0);
    assert_eq!(rows_of(&pool, "api_tokens", bob).await, 1);
}

#[tokio::test]
async fn an_expired_token_is_not_found_and_is_purged_while_a_live_one_stays() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "expiry@example.com").await;
    let (expired, live) = ([1_u8; 32], [2_u8; 32]);
    tokens::issue(&pool, owner, &expired).await.expect("issued");
    tokens::issue(&pool, owner, &live).await.expect("issued");
    // Arrange: time passes for one of them.
    sqlx::query(
        "update api_tokens set expires_at = now() - interval '1 second' where token_hash = $1",
    )
    .bind(&expired[..])
    .execute(&pool)
    .await
    .expect("aged");

    assert_eq!(tokens::find(&pool, &expired).await.expect("read"), None);
    assert_eq!(tokens::purge_expired(&pool).await.expect("purged"), 1);
    assert!(tokens::find(&pool, &live).await.expect("read").is_some());
}
