use std::time::Duration;

use api::owners::admin::{self, AuditEntry};
use testkit::postgres::migrated_pool;

const HOUR: Duration = Duration::from_secs(3600);
const ADMIN_TOKEN: [u8; 32] = [9; 32];

#[tokio::test]
async fn a_session_is_live_until_it_ends_and_ends_once() {
    let pool = migrated_pool().await;
    let session = [1_u8; 32];
    admin::open_session(&pool, &session, &ADMIN_TOKEN, "127.0.0.1", HOUR)
        .await
        .expect("opened");

    let token = admin::session_token(&pool, &session).await.expect("read");
    assert_eq!(token.as_deref(), Some(&ADMIN_TOKEN[..]), "opened with it");

    assert!(admin::end_session(&pool, &session).await.expect("ended"));
    assert_eq!(
        admin::session_token(&pool, &session).await.expect("read"),
        None
    );
    assert!(
        !admin::end_session(&pool, &session).await.expect("read"),
        "only once"
    );
}

#[tokio::test]
async fn an_expired_session_is_not_live_and_the_next_sign_in_sweeps_it() {
    let pool = migrated_pool().await;
    let (expired, live) = ([1_u8; 32], [2_u8; 32]);
    admin::open_session(&pool, &expired, &ADMIN_TOKEN, "127.0.0.1", HOUR)
        .await
        .expect("opened");
    // Arrange: its lifetime passes.
    sqlx::query("update admin_sessions set expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .expect("aged");
    assert_eq!(
        admin::session_token(&pool, &expired).await.expect("read"),
        None
    );

    admin::open_session(&pool, &live, &ADMIN_TOKEN, "127.0.0.1", HOUR)
        .await
        .expect("opened");

    let hashes: Vec<Vec<u8>> = sqlx::query_scalar("select session_hash from admin_sessions")
        .fetch_all(&pool)
        .await
        .expect("read");
    assert_eq!(hashes, [live.to_vec()], "the expired row is gone");
}

#[tokio::test]
async fn signing_out_everyone_ends_every_session() {
    let pool = migrated_pool().await;
    let sessions = [[1_u8; 32], [2_u8; 32], [3_u8; 32]];
    for session in &sessions {
        admin::open_session(&pool, session, &ADMIN_TOKEN, "10.0.0.1", HOUR)
            .await
            .expect("opened");
    }

    assert_eq!(admin::end_every_session(&pool).await.expect("ended"), 3);
    for session in &sessions {
        assert_eq!(
            admin::session_token(&pool, session).await.expect("read"),
            None
        );
    }
    assert_eq!(admin::end_every_session(&pool).await.expect("ended"), 0);
}

#[tokio::test]
async fn the_audit_log_records_every_action_and_shows_the_latest_first() {
    let pool = migrated_pool().await;
    let entry = |action: &str, job_id: Option<&str>| AuditEntry {
        at: chrono::Utc::now(),
        actor: "session 1a2b3c4d".to_owned(),
        client: "10.0.0.1".to_owned(),
        action: action.to_owned(),
        queue: job_id.map(|_| "welcome-email".to_owned()),
        job_id: job_id.map(str::to_owned),
        detail: None,
    };
    let actions = [
        entry("sign_in", None),
        entry("retry", Some("job-1")),
        entry("remove", Some("job-2")),
    ];
    for action in &actions {
        admin::record(&pool, action).await.expect("recorded");
    }

    let recent = admin::recent(&pool, 2).await.expect("read");

    let seen: Vec<(&str, Option<&str>)> = recent
        .iter()
        .map(|e| (e.action.as_str(), e.job_id.as_deref()))
        .collect();
    assert_eq!(seen, [("remove", Some("job-2")), ("retry", Some("job-1"))]);
    assert_eq!(recent[0].actor, "session 1a2b3c4d");
    assert_eq!(recent[0].queue.as_deref(), Some("welcome-email"));
    assert_eq!(admin::recent(&pool, 10).await.expect("read").len(), 3);
}
