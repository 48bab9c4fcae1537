use api::owners::incidents::{self, Kind};
use testkit::postgres::migrated_pool;

#[tokio::test]
async fn an_incident_opens_once_per_kind_and_queue_while_it_is_open() {
    let pool = migrated_pool().await;

    let first = incidents::open(&pool, Kind::NoConsumer, "welcome-email", "no worker")
        .await
        .expect("read");
    let again = incidents::open(&pool, Kind::NoConsumer, "welcome-email", "no worker")
        .await
        .expect("read");
    let other_queue = incidents::open(&pool, Kind::NoConsumer, "photo", "no worker")
        .await
        .expect("read");
    let other_kind = incidents::open(&pool, Kind::Failures, "welcome-email", "failing")
        .await
        .expect("read");

    let first = first.expect("opened by the first evaluation");
    assert_eq!(
        (first.kind.as_str(), first.queue.as_str()),
        ("no_consumer", "welcome-email")
    );
    assert_eq!(first.closed_at, None);
    assert_eq!(again, None, "already open");
    assert!(other_queue.is_some() && other_kind.is_some());
    assert_eq!(incidents::open_ones(&pool).await.expect("read").len(), 3);
}

#[tokio::test]
async fn an_incident_closes_once_and_then_the_condition_may_open_a_new_one() {
    let pool = migrated_pool().await;
    let incident = incidents::open(&pool, Kind::Outbox, "", "records stuck")
        .await
        .expect("read")
        .expect("opened");

    assert!(
        incidents::close(&pool, incident.incident_id)
            .await
            .expect("ok")
    );
    assert!(
        !incidents::close(&pool, incident.incident_id)
            .await
            .expect("ok"),
        "only once"
    );
    assert!(incidents::open_ones(&pool).await.expect("read").is_empty());

    let next = incidents::open(&pool, Kind::Outbox, "", "records stuck again")
        .await
        .expect("read")
        .expect("a new one");
    assert_ne!(next.incident_id, incident.incident_id);
}

#[tokio::test]
async fn a_start_and_an_end_are_owed_to_the_team_until_told() {
    let pool = migrated_pool().await;
    let id = incidents::open(&pool, Kind::Misconfigured, "billing", "key refused")
        .await
        .expect("read")
        .expect("opened")
        .incident_id;
    let owed = || async {
        incidents::owed(&pool)
            .await
            .expect("read")
            .iter()
            .map(|incident| incident.incident_id)
            .collect::<Vec<_>>()
    };

    assert_eq!(owed().await, [id], "its start");
    incidents::told_opened(&pool, id).await.expect("told");
    assert!(owed().await.is_empty());
    incidents::close(&pool, id).await.expect("closed");
    assert_eq!(owed().await, [id], "its end");
    incidents::told_closed(&pool, id).await.expect("told");
    assert!(owed().await.is_empty());
}

#[tokio::test]
async fn the_dashboard_shows_open_incidents_and_those_closed_lately() {
    let pool = migrated_pool().await;
    let mut ids = Vec::new();
    for queue in ["lately", "long-ago", "still-open"] {
        let incident = incidents::open(&pool, Kind::OldestWaiting, queue, "waits")
            .await
            .expect("read")
            .expect("opened");
        ids.push(incident.incident_id);
    }
    for id in &ids[..2] {
        incidents::close(&pool, *id).await.expect("closed");
    }
    // Arrange: one closed three hours ago.
    sqlx::query(
        "update incidents set closed_at = now() - interval '3 hours' where queue = 'long-ago'",
    )
    .execute(&pool)
    .await
    .expect("aged");

    let shown: Vec<String> = incidents::recent(&pool, 1)
        .await
        .expect("read")
        .into_iter()
        .map(|incident| incident.queue)
        .collect();

    assert_eq!(shown, ["still-open", "lately"], "open first");
}
