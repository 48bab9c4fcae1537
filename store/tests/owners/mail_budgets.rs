use std::time::Duration;

use store::mail_budgets::{Allowance, Budget, Taken};
use store::{mail_budgets, resets, users, verifications};
use testkit::postgres::migrated_pool;

use super::user;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_lets_three_through_however_many_ask_at_once_and_one_more_once_the_oldest_is_an_hour_old()
 {
    let pool = migrated_pool().await;
    // Spellings the accounts' unique index treats as one address.
    let spellings = [
        "victim@example.com",
        "Victim@Example.com",
        " VICTIM@example.COM ",
    ];
    let take = |n: usize| {
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.expect("a transaction");
            let budget = Budget::UnprovenAddress(spellings[n % spellings.len()]);
            let taken = mail_budgets::take(&mut tx, budget, Allowance::THREE_AN_HOUR)
                .await
                .expect("taken");
            tx.commit().await.expect("committed");
            taken
        }
    };

    let all = futures::future::join_all((0..20).map(take)).await;
    let sent = all.iter().filter(|t| **t == Taken::Sent).count();
    assert_eq!(sent, 3, "{all:?}");
    let Taken::Spent { retry_after_secs } = take(0).await else {
        panic!("the budget is spent");
    };
    assert!(
        (3500..=3600).contains(&retry_after_secs),
        "{retry_after_secs}"
    );

    // The oldest send leaves the window.
    sqlx::query("update mail_budgets set sent_at[1] = now() - interval '61 minutes'")
        .execute(&pool)
        .await
        .expect("aged");
    assert_eq!(take(1).await, Taken::Sent);
    assert!(matches!(take(2).await, Taken::Spent { .. }));
}

#[tokio::test]
async fn a_budget_taken_in_a_transaction_that_rolls_back_is_given_back() {
    let pool = migrated_pool().await;
    for _ in 0..5 {
        let mut tx = pool.begin().await.expect("a transaction");
        let taken = mail_budgets::take(
            &mut tx,
            Budget::Resets("a@example.com"),
            Allowance::THREE_AN_HOUR,
        )
        .await
        .expect("taken");
        assert_eq!(taken, Taken::Sent);
        tx.rollback().await.expect("rolled back");
    }
}

#[tokio::test]
async fn links_and_sessions_asked_for_under_an_old_epoch_are_not_issued() {
    let pool = migrated_pool().await;
    let owner = user(&pool, "epoch@example.com").await;
    assert!(
        users::mark_verified(&pool, owner, "epoch@example.com")
            .await
            .expect("verified")
    );
    let before = users::standing(&pool, owner)
        .await
        .expect("read")
        .expect("the account")
        .epoch;

    // Every session ended: logins in flight get no session, links stay.
    let mut tx = pool.begin().await.expect("a transaction");
    assert!(
        users::hold_for_session(&mut tx, owner, before)
            .await
            .expect("held")
    );
    tx.rollback().await.expect("rolled back");
    assert!(users::end_every_session(&pool, owner).await.expect("ended"));
    let mut tx = pool.begin().await.expect("a transaction");
    assert!(
        !users::hold_for_session(&mut tx, owner, before)
            .await
            .expect("held")
    );
    assert!(
        users::hold_credentials(&mut tx, owner, before)
            .await
            .expect("held")
    );
    tx.rollback().await.expect("rolled back");

    // A new password (made here as a reset makes it).
    assert!(
        users::set_password(
            &pool,
            owner,
            "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3"
        )
        .await
        .expect("set")
    );

    let mut tx = pool.begin().await.expect("a transaction");
    assert!(
        !users::hold_credentials(&mut tx, owner, before)
            .await
            .expect("held")
    );
    assert!(
        users::hold_credentials(&mut tx, owner, before + 1)
            .await
            .expect("held")
    );
    tx.rollback().await.expect("rolled back");
    let ttl = Duration::from_secs(600);
    let verification =
        verifications::issue(&pool, owner, before, "epoch@example.com", &[1; 32], ttl).await;
    assert!(!verification.expect("asked"), "no confirmation link");
    let reset = resets::issue(&pool, owner, before, &[2; 32], ttl).await;
    assert_eq!(reset.expect("asked"), None, "no reset link");
    let current = resets::issue(&pool, owner, before + 1, &[3; 32], ttl).await;
    assert_eq!(
        current.expect("asked").as_deref(),
        Some("epoch@example.com")
    );
}
