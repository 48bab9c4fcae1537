use std::time::Duration;

use catalogue::QueueName;
use sqlx::PgPool;
use store::records::{self, Failure, JobState, NewRecord, Origin, PublicError, Run, Started};
use testkit::postgres::migrated_pool;
use uuid::Uuid;

/// Records a system job (no owner), due after `delay`; returns its id.
async fn recorded(pool: &PgPool, delay: Option<Duration>) -> Uuid {
    let job_id = Uuid::now_v7();
    let mut conn = pool.acquire().await.expect("a connection");
    let record = NewRecord {
        job_id,
        owner: None,
        queue: QueueName::WelcomeEmail,
        payload: &serde_json::json!({}),
        max_attempts: 3,
        delay,
    };
    let origin = Origin {
        request_id: Some("req-1".to_owned()),
        trace_parent: None,
    };
    records::insert(&mut conn, record, &origin)
        .await
        .expect("recorded");
    job_id
}

/// The attempt that now owns the record `job_id`.
async fn started(pool: &PgPool, job_id: Uuid) -> Run {
    match records::start(pool, job_id).await.expect("started") {
        Started::Run(run, _) => run,
        other => panic!("the record is open: {other:?}"),
    }
}

async fn state_of(pool: &PgPool, job_id: Uuid) -> String {
    sqlx::query_scalar("select state from jobs where job_id = $1")
        .bind(job_id)
        .fetch_one(pool)
        .await
        .expect("read")
}

fn failure(public: &PublicError) -> Failure<'_> {
    Failure {
        public,
        detail: "the provider said no",
    }
}

fn unreadable() -> PublicError {
    PublicError {
        code: "image_unreadable",
        message: "The image could not be read.".to_owned(),
    }
}

#[tokio::test]
async fn a_completed_record_is_final_and_a_late_start_is_a_duplicate_delivery() {
    let pool = migrated_pool().await;
    let job = recorded(&pool, None).await;
    records::enqueued(&pool, &[job]).await.expect("enqueued");
    let run = started(&pool, job).await;
    let done = serde_json::json!({ "sent": true });
    assert!(records::completed(&pool, run, 1, &done).await.expect("ok"));

    let late = records::start(&pool, job).await.expect("read");
    records::enqueued(&pool, &[job]).await.expect("enqueued");
    records::retried(&pool, job).await.expect("read");

    assert_eq!(late, Started::AlreadyCompleted);
    assert_eq!(state_of(&pool, job).await, "completed");
    assert_eq!(
        records::start(&pool, Uuid::now_v7()).await.expect("read"),
        Started::Unrecorded,
        "a job without a record runs unrecorded"
    );
}

#[tokio::test]
async fn an_attempt_that_lost_the_record_to_a_newer_one_writes_nothing() {
    let pool = migrated_pool().await;
    let job = recorded(&pool, None).await;
    let stale = started(&pool, job).await;
    let current = started(&pool, job).await;
    let public = unreadable();

    let stale_done = records::completed(&pool, stale, 1, &serde_json::json!({}))
        .await
        .expect("ok");
    let stale_failed = records::attempt_failed(&pool, stale, 1, failure(&public), false)
        .await
        .expect("ok");

    assert!(!stale_done && !stale_failed, "the older attempt is refused");
    assert_eq!(state_of(&pool, job).await, "active");
    assert!(
        records::attempt_failed(&pool, current, 2, failure(&public), true)
            .await
            .expect("ok"),
        "the attempt that owns it is heard"
    );
    assert_eq!(state_of(&pool, job).await, "delayed");
}

#[tokio::test]
async fn a_failed_record_is_left_only_by_an_operators_retry() {
    let pool = migrated_pool().await;
    let job = recorded(&pool, None).await;
    let run = started(&pool, job).await;
    let public = unreadable();
    assert!(
        records::attempt_failed(&pool, run, 3, failure(&public), false)
            .await
            .expect("ok")
    );

    records::enqueued(&pool, &[job]).await.expect("enqueued");
    records::progress(&pool, run, 50).await.expect("ok");
    assert_eq!(
        state_of(&pool, job).await,
        "failed",
        "nothing else moves it"
    );

    records::retried(&pool, job).await.expect("retried");
    assert_eq!(state_of(&pool, job).await, "waiting");
    let again = started(&pool, job).await;
    assert!(
        records::completed(&pool, again, 4, &serde_json::json!({}))
            .await
            .expect("ok")
    );
}

#[tokio::test]
async fn a_record_is_written_as_its_hand_over_leaves_it_and_only_a_failed_one_says_pending() {
    let pool = migrated_pool().await;
    let (now, later, running) = (
        recorded(&pool, None).await,
        recorded(&pool, Some(Duration::from_secs(3600))).await,
        recorded(&pool, None).await,
    );
    assert_eq!(state_of(&pool, now).await, "waiting");
    assert_eq!(state_of(&pool, later).await, "delayed");
    started(&pool, running).await;

    // The hand-over failed: not in Redis.
    let mut marked = records::unenqueued(&pool, &[now, later, running])
        .await
        .expect("marked");
    marked.sort();
    let mut expected = vec![now, later];
    expected.sort();
    assert_eq!(marked, expected, "a started record is in Redis after all");
    assert_eq!(state_of(&pool, now).await, "pending");
    assert_eq!(state_of(&pool, later).await, "pending");

    // The relay handed them over.
    let mut moved = records::enqueued(&pool, &[now, later, running])
        .await
        .expect("enqueued");
    moved.sort();
    assert_eq!(moved, expected);
    assert_eq!(state_of(&pool, now).await, "waiting");
    assert_eq!(state_of(&pool, later).await, "delayed");
    assert_eq!(state_of(&pool, running).await, "active", "never moved back");
    let again = records::unenqueued(&pool, &[now]).await.expect("read");
    assert!(
        again.is_empty(),
        "a confirmed record is known to be in Redis"
    );
}

#[tokio::test]
async fn an_unowned_record_is_failed_only_from_the_state_it_was_seen_in() {
    let pool = migrated_pool().await;
    let job = recorded(&pool, None).await;
    records::unenqueued(&pool, &[job]).await.expect("pending");
    let public = unreadable();

    let from_active = records::fail_unowned(&pool, job, JobState::Active, failure(&public))
        .await
        .expect("ok");
    let from_pending = records::fail_unowned(&pool, job, JobState::Pending, failure(&public))
        .await
        .expect("ok");

    assert!(!from_active, "it was pending, not active");
    assert!(from_pending);
    assert_eq!(state_of(&pool, job).await, "failed");
}

#[tokio::test]
async fn a_job_bullmq_gave_up_on_is_failed_whether_or_not_an_attempt_ever_started_and_a_finished_one_stays()
 {
    let pool = migrated_pool().await;
    let (never_started, running, done) = (
        recorded(&pool, None).await,
        recorded(&pool, None).await,
        recorded(&pool, None).await,
    );
    let _run = started(&pool, running).await;
    let finished = started(&pool, done).await;
    let result = serde_json::json!({ "ok": true });
    assert!(
        records::completed(&pool, finished, 1, &result)
            .await
            .expect("ok")
    );
    let public = unreadable();

    for job in [never_started, running, done] {
        let _ = records::fail_unfinished(&pool, job, failure(&public))
            .await
            .expect("ok");
    }

    assert_eq!(
        state_of(&pool, never_started).await,
        "failed",
        "not left waiting"
    );
    assert_eq!(state_of(&pool, running).await, "failed");
    assert_eq!(state_of(&pool, done).await, "completed", "never reopened");
}

#[tokio::test]
async fn pruning_removes_old_finished_records_and_keeps_unfinished_ones_however_old() {
    let pool = migrated_pool().await;
    let (completed, failed, waiting, recent) = (
        recorded(&pool, None).await,
        recorded(&pool, None).await,
        recorded(&pool, None).await,
        recorded(&pool, None).await,
    );
    for job in [completed, recent] {
        let run = started(&pool, job).await;
        records::completed(&pool, run, 1, &serde_json::json!({}))
            .await
            .expect("ok");
    }
    let public = unreadable();
    let run = started(&pool, failed).await;
    records::attempt_failed(&pool, run, 1, failure(&public), false)
        .await
        .expect("ok");
    records::enqueued(&pool, &[waiting]).await.expect("ok");
    // Arrange: two days pass for all but `recent`.
    sqlx::query(
        "update jobs set created_at = now() - interval '2 days',
                         finished_at = finished_at - interval '2 days'
         where job_id <> $1",
    )
    .bind(recent)
    .execute(&pool)
    .await
    .expect("aged");

    let pruned = records::prune_finished(&pool, Duration::from_secs(86_400))
        .await
        .expect("pruned");

    assert_eq!(pruned, 2);
    let mut left: Vec<Uuid> = sqlx::query_scalar("select job_id from jobs")
        .fetch_all(&pool)
        .await
        .expect("read");
    left.sort();
    let mut kept = [waiting, recent];
    kept.sort();
    assert_eq!(left, kept);
}

#[tokio::test]
async fn a_batch_starts_and_completes_its_records_together_under_the_single_rules() {
    let pool = migrated_pool().await;
    let (open, done, newer) = (
        recorded(&pool, None).await,
        recorded(&pool, None).await,
        recorded(&pool, None).await,
    );
    let unknown = Uuid::now_v7();
    records::enqueued(&pool, &[open, done, newer])
        .await
        .expect("enqueued");
    let finished = started(&pool, done).await;
    let result = serde_json::json!({ "posted": "earlier" });
    assert!(
        records::completed(&pool, finished, 1, &result)
            .await
            .expect("ok")
    );

    let batch = records::start_batch(&pool, &[open, done, unknown, newer])
        .await
        .expect("started");

    let runs: Vec<Run> = batch
        .iter()
        .filter_map(|found| match found {
            Started::Run(run, origin) => {
                assert_eq!(origin.request_id.as_deref(), Some("req-1"));
                Some(*run)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        runs.iter().map(|run| run.job_id).collect::<Vec<_>>(),
        [open, newer]
    );
    assert_eq!(
        batch[1],
        Started::AlreadyCompleted,
        "a completed record stays closed"
    );
    assert_eq!(batch[2], Started::Unrecorded);
    assert_eq!(state_of(&pool, open).await, "active");
    // A newer attempt (a redelivery after a lost lock) takes one record over.
    let _newest = started(&pool, newer).await;

    let posted = serde_json::json!({ "posted": "batch" });
    let taken = records::completed_batch(&pool, &[(runs[0], 1, &posted), (runs[1], 2, &posted)])
        .await
        .expect("recorded");

    assert_eq!(taken, [open], "only the records the batch still owns");
    assert_eq!(state_of(&pool, open).await, "completed");
    assert_eq!(state_of(&pool, newer).await, "active");
    let kept: serde_json::Value = sqlx::query_scalar("select result from jobs where job_id = $1")
        .bind(done)
        .fetch_one(&pool)
        .await
        .expect("read");
    assert_eq!(kept, result, "the earlier result stays");
}

#[tokio::test]
async fn records_written_together_are_each_written_as_one_alone_is() {
    let pool = migrated_pool().await;
    let alone = recorded(&pool, None).await;
    let alone_later = recorded(&pool, Some(Duration::from_secs(3600))).await;
    let (together, together_later) = (Uuid::now_v7(), Uuid::now_v7());
    let payload = serde_json::json!({});
    let new = |job_id, delay| NewRecord {
        job_id,
        owner: None,
        queue: QueueName::WelcomeEmail,
        payload: &payload,
        max_attempts: 3,
        delay,
    };
    let origin = Origin {
        request_id: Some("req-1".to_owned()),
        trace_parent: None,
    };
    let mut conn = pool.acquire().await.expect("a connection");

    records::insert_all(
        &mut conn,
        &[
            (new(together, None), origin.clone()),
            (new(together_later, Some(Duration::from_secs(3600))), origin),
        ],
    )
    .await
    .expect("recorded");

    assert_eq!(row(&pool, together).await, row(&pool, alone).await);
    assert_eq!(
        row(&pool, together_later).await,
        row(&pool, alone_later).await
    );
    assert_eq!(state_of(&pool, together).await, "waiting");
    assert_eq!(state_of(&pool, together_later).await, "delayed");
    assert_eq!(
        records::outbox_backlog(&pool).await.expect("counted").0,
        4,
        "unconfirmed until a worker or the relay confirms the hand-over"
    );
}

/// What a record says, its id and times aside (a delay to within a minute).
async fn row(pool: &PgPool, job_id: Uuid) -> serde_json::Value {
    sqlx::query_scalar(
        "select jsonb_build_object('user', user_id, 'queue', queue, 'payload', payload,
                'max_attempts', max_attempts, 'request', request_id, 'trace', trace_parent,
                'state', state, 'attempts', attempts_made,
                'due_in_minutes', round(extract(epoch from run_at - now()) / 60))
         from jobs where job_id = $1",
    )
    .bind(job_id)
    .fetch_one(pool)
    .await
    .expect("recorded")
}
