use std::time::Duration;

use chrono::{TimeZone, Utc};
use sqlx::PgPool;
use store::stripe_events::{self, StoredEvent};
use store::users;
use testkit::postgres::migrated_pool;
use uuid::Uuid;

use super::user;

/// An invoice event about `customer`, naming its person.
fn event(event_id: &str, customer: &str) -> StoredEvent {
    StoredEvent {
        event_id: event_id.to_owned(),
        event_type: "invoice.paid".to_owned(),
        created: Utc
            .timestamp_opt(1_780_000_000, 0)
            .single()
            .expect("a time"),
        payload: serde_json::json!({
            "id": event_id,
            "type": "invoice.paid",
            "data": { "object": {
                "object": "invoice",
                "customer": customer,
                "customer_email": "person@example.com",
            } },
        }),
    }
}

/// Stores `event` as a first delivery would; whether it was new.
async fn record(pool: &PgPool, event: &StoredEvent) -> bool {
    let mut conn = pool.acquire().await.expect("a connection");
    stripe_events::record(&mut conn, event, Uuid::now_v7())
        .await
        .expect("read")
}

async fn stored(pool: &PgPool, event_id: &str) -> StoredEvent {
    stripe_events::get(pool, event_id)
        .await
        .expect("read")
        .expect("stored")
}

#[tokio::test]
async fn an_event_is_stored_once_per_id_and_a_redelivery_changes_nothing() {
    let pool = migrated_pool().await;
    let first = event("evt_1", "cus_1");
    let mut redelivered = event("evt_1", "cus_other");
    redelivered.event_type = "customer.deleted".to_owned();

    assert!(record(&pool, &first).await);
    assert!(!record(&pool, &redelivered).await, "a second delivery");

    assert_eq!(stored(&pool, "evt_1").await, first);
    assert_eq!(
        stripe_events::get(&pool, "evt_2").await.expect("read"),
        None
    );
}

#[tokio::test]
async fn events_stored_together_are_each_stored_once_and_only_new_ones_name_their_job() {
    let pool = migrated_pool().await;
    assert!(record(&pool, &event("evt_before", "cus_1")).await);
    let (new, before, again) = (
        event("evt_new", "cus_1"),
        event("evt_before", "cus_2"),
        event("evt_new", "cus_3"),
    );
    let jobs = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
    let mut conn = pool.acquire().await.expect("a connection");

    let new_jobs = stripe_events::record_all(
        &mut conn,
        &[(&new, jobs[0]), (&before, jobs[1]), (&again, jobs[2])],
    )
    .await
    .expect("stored");

    assert_eq!(
        new_jobs,
        vec![jobs[0]],
        "only the new event, its first copy"
    );
    assert_eq!(stored_job(&pool, "evt_new").await, jobs[0]);
    assert_eq!(stored(&pool, "evt_new").await, new);
    assert_eq!(
        stored(&pool, "evt_before").await,
        event("evt_before", "cus_1")
    );
    assert_eq!(
        stripe_events::record_all(&mut conn, &[])
            .await
            .expect("nothing"),
        Vec::<Uuid>::new()
    );
}

async fn stored_job(pool: &PgPool, event_id: &str) -> Uuid {
    sqlx::query_scalar("select job_id from stripe_events where event_id = $1")
        .bind(event_id)
        .fetch_one(pool)
        .await
        .expect("stored")
}

#[tokio::test]
async fn purging_a_customers_events_keeps_their_ids_and_other_customers_payloads() {
    let pool = migrated_pool().await;
    for (id, customer) in [
        ("evt_1", "cus_gone"),
        ("evt_2", "cus_gone"),
        ("evt_3", "cus_kept"),
    ] {
        record(&pool, &event(id, customer)).await;
    }

    let purged = stripe_events::purge_customer(&pool, "cus_gone")
        .await
        .expect("purged");

    assert_eq!(purged, 2);
    for id in ["evt_1", "evt_2"] {
        let event = stored(&pool, id).await;
        assert!(event.is_purged(), "{event:?}");
        assert!(!event.payload.to_string().contains("person@"), "{event:?}");
        assert!(
            !record(&pool, &self::event(id, "cus_gone")).await,
            "still known"
        );
    }
    assert!(!stored(&pool, "evt_3").await.is_purged());
}

#[tokio::test]
async fn an_event_whose_customer_no_live_account_has_is_purged_and_a_live_ones_is_kept() {
    let pool = migrated_pool().await;
    let (live, leaving) = (
        user(&pool, "live@example.com").await,
        user(&pool, "leaving@example.com").await,
    );
    for (id, customer) in [(live, "cus_live"), (leaving, "cus_leaving")] {
        assert!(
            users::set_stripe_customer(&pool, id, customer)
                .await
                .expect("set")
        );
    }
    assert!(users::begin_deletion(&pool, leaving).await.expect("ok"));
    for (id, customer) in [
        ("evt_live", "cus_live"),
        ("evt_leaving", "cus_leaving"),
        ("evt_stranger", "cus_stranger"),
    ] {
        record(&pool, &event(id, customer)).await;
    }

    let kept = stripe_events::purge_unclaimed(&pool, "evt_live")
        .await
        .expect("read");
    let leaving = stripe_events::purge_unclaimed(&pool, "evt_leaving")
        .await
        .expect("read");
    let stranger = stripe_events::purge_unclaimed(&pool, "evt_stranger")
        .await
        .expect("read");

    assert_eq!((kept, leaving, stranger), (0, 1, 1));
    assert!(!stored(&pool, "evt_live").await.is_purged());
    assert!(stored(&pool, "evt_leaving").await.is_purged());
    assert!(stored(&pool, "evt_stranger").await.is_purged());
}

#[tokio::test]
async fn pruning_removes_only_events_received_before_the_retention() {
    let pool = migrated_pool().await;
    record(&pool, &event("evt_old", "cus_1")).await;
    record(&pool, &event("evt_new", "cus_1")).await;
    // Arrange: four days pass for one of them.
    sqlx::query(
        "update stripe_events set received_at = now() - interval '4 days' where event_id = 'evt_old'",
    )
    .execute(&pool)
    .await
    .expect("aged");

    let pruned = stripe_events::prune(&pool, Duration::from_secs(3 * 86_400))
        .await
        .expect("pruned");

    assert_eq!(pruned, 1);
    assert_eq!(
        stripe_events::get(&pool, "evt_old").await.expect("read"),
        None
    );
    assert!(
        stripe_events::get(&pool, "evt_new")
            .await
            .expect("read")
            .is_some()
    );
}
