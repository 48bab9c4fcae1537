use std::time::Duration;

use platform::config::LoginFailureLimit;
use store::devices;
use store::devices::DeviceAttempt;
use testkit::postgres::migrated_pool;

use super::{rows_of, user};

const LIMIT: LoginFailureLimit = LoginFailureLimit {
    max: 3,
    window: Duration::from_secs(900),
};

#[tokio::test]
async fn a_device_counts_attempts_only_for_its_own_account_and_up_to_the_limit() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "owner@example.com").await;
    user(&pool, "other@example.com").await;
    let hash = [3_u8; 32];
    devices::issue(&pool, owner, &hash).await.expect("trusted");

    let elsewhere = devices::begin_attempt(&pool, &hash, "other@example.com", LIMIT)
        .await
        .expect("read");
    let unknown = devices::begin_attempt(&pool, &[4_u8; 32], "owner@example.com", LIMIT)
        .await
        .expect("read");
    let attempts = futures::future::join_all(
        (0..10).map(|_| devices::begin_attempt(&pool, &hash, "OWNER@example.com", LIMIT)),
    )
    .await;

    assert_eq!(
        elsewhere,
        DeviceAttempt::NotTrusted,
        "another account's device"
    );
    assert_eq!(unknown, DeviceAttempt::NotTrusted);
    let attempts: Vec<DeviceAttempt> = attempts.into_iter().map(|a| a.expect("read")).collect();
    let counted = attempts
        .iter()
        .filter(|a| matches!(a, DeviceAttempt::Counted { user_id, .. } if *user_id == owner))
        .count();
    let locked = attempts
        .iter()
        .filter(|a| matches!(a, DeviceAttempt::Locked { for_secs } if *for_secs > 800.0))
        .count();
    assert_eq!((counted, locked), (3, 7), "{attempts:?}");

    devices::clear_failures(&pool, &hash)
        .await
        .expect("cleared");
    let again = devices::begin_attempt(&pool, &hash, "owner@example.com", LIMIT)
        .await
        .expect("read");
    assert!(matches!(again, DeviceAttempt::Counted { .. }), "{again:?}");
}

#[tokio::test]
async fn expired_devices_are_not_trusted_and_are_purged_and_revoking_ends_all() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "owner@example.com").await;
    let (old, current) = ([5_u8; 32], [6_u8; 32]);
    devices::issue(&pool, owner, &old).await.expect("trusted");
    devices::issue(&pool, owner, &current)
        .await
        .expect("trusted");
    sqlx::query(
        "update trusted_devices set expires_at = now() - interval '1 day' where token_hash = $1",
    )
    .bind(&old[..])
    .execute(&pool)
    .await
    .expect("aged");

    let expired = devices::begin_attempt(&pool, &old, "owner@example.com", LIMIT)
        .await
        .expect("read");
    assert_eq!(expired, DeviceAttempt::NotTrusted);
    assert_eq!(devices::purge_expired(&pool).await.expect("purged"), 1);
    assert_eq!(rows_of(&pool, "trusted_devices", owner).await, 1);
    assert_eq!(
        devices::revoke_all_of_user(&pool, owner)
            .await
            .expect("revoked"),
        1
    );
    assert_eq!(rows_of(&pool, "trusted_devices", owner).await, 0);
}
