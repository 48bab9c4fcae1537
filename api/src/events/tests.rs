use std::sync::Arc;

use chrono::{Duration, Utc};
use platform::config::EventSettings;
use proptest::prelude::*;
use uuid::Uuid;

use super::stream::Start;
use super::{Event, Hub, JobEvent, Refused, STREAM_QUEUE};

fn hub(per_user: usize, max_streams: usize) -> Arc<Hub> {
    Arc::new(Hub::new(EventSettings {
        per_user,
        max_streams,
    }))
}

fn job_event(version: i64) -> Event {
    Event::Job(Arc::new(JobEvent {
        id: Uuid::now_v7(),
        version,
        data: "{}".to_owned(),
    }))
}

#[test]
fn a_recent_cursor_resumes_and_an_old_foreign_or_future_one_resets() {
    let now = Utc::now();
    let recent = (now - Duration::minutes(5)).timestamp_micros().to_string();
    assert!(matches!(
        Start::from_last_event_id(Some(&recent), now),
        Start::After(_)
    ));
    assert!(matches!(Start::from_last_event_id(None, now), Start::Fresh));
    let old = (now - Duration::hours(2)).timestamp_micros().to_string();
    let future = (now + Duration::hours(1)).timestamp_micros().to_string();
    for reset in [
        old.as_str(),
        future.as_str(),
        "",
        "abc",
        "-1",
        "1e9",
        "99999999999999999999",
    ] {
        assert!(
            matches!(Start::from_last_event_id(Some(reset), now), Start::Reset(_)),
            "{reset:?} resets"
        );
    }
}

proptest! {
    #[test]
    fn any_last_event_id_is_a_start_never_a_failure(header in ".{0,64}") {
        let now = Utc::now();
        let start = Start::from_last_event_id(Some(&header), now);
        if let Start::After(cursor) = start {
            prop_assert!(cursor <= now + Duration::seconds(60));
            prop_assert!(cursor >= now - Duration::hours(1));
        }
    }

    #[test]
    fn a_cursor_resumes_exactly_within_the_window(seconds_ago in -7_200_i64..7_200) {
        let now = Utc::now();
        let cursor = now - Duration::seconds(seconds_ago);
        let start = Start::from_last_event_id(Some(&cursor.timestamp_micros().to_string()), now);
        let inside = (-60..=3_600).contains(&seconds_ago);
        let resumed = matches!(start, Start::After(at) if at.timestamp_micros() == cursor.timestamp_micros());
        prop_assert_eq!(resumed, inside);
    }
}

#[test]
fn the_hub_refuses_past_each_cap_and_a_slot_comes_back_when_a_stream_ends() {
    let hub = hub(2, 3);
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let first = hub.open(ada, [1; 32]).expect("a first stream");
    let _second = hub.open(ada, [1; 32]).expect("a second tab");
    assert_eq!(hub.open(ada, [1; 32]).err(), Some(Refused::PerUser(2)));
    let _bobs = hub.open(bob, [2; 32]).expect("another user");
    assert_eq!(
        hub.open(bob, [2; 32]).err(),
        Some(Refused::Full),
        "the instance is full"
    );
    drop(first);
    let _again = hub
        .open(ada, [1; 32])
        .expect("the closed tab's slot is free");
    hub.close();
    assert_eq!(
        hub.open(bob, [2; 32]).err(),
        Some(Refused::Full),
        "a stopping instance opens none"
    );
}

#[tokio::test]
async fn a_stream_too_far_behind_is_ended_and_the_others_go_on() {
    let hub = hub(8, 8);
    let user = Uuid::now_v7();
    let mut slow = hub.open(user, [1; 32]).expect("open");
    let mut quick = hub.open(user, [1; 32]).expect("open");
    for version in 0..STREAM_QUEUE as i64 {
        assert_eq!(hub.send_to(user, &job_event(version)), 2);
        let _ = quick.events.recv().await;
    }
    assert_eq!(
        hub.send_to(user, &job_event(99)),
        1,
        "the slow one was dropped"
    );
    let mut queued = 0;
    while slow.events.recv().await.is_some() {
        queued += 1;
    }
    assert_eq!(
        queued, STREAM_QUEUE,
        "it reads what it had, then ends (to resume by replay)"
    );
    assert!(matches!(quick.events.recv().await, Some(Event::Job(_))));
}

#[tokio::test]
async fn revoking_a_token_ends_its_streams_only() {
    let hub = hub(8, 8);
    let user = Uuid::now_v7();
    let mut revoked = hub.open(user, [1; 32]).expect("open");
    let mut kept = hub.open(user, [2; 32]).expect("open");
    hub.revoke(&[1; 32]);
    assert!(matches!(
        revoked.events.recv().await,
        Some(Event::End(None))
    ));
    assert!(revoked.events.recv().await.is_none());
    assert_eq!(hub.send_to(user, &job_event(1)), 1);
    assert!(matches!(kept.events.recv().await, Some(Event::Job(_))));
}
