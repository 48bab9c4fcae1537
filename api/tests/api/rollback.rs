//! Rolling a release back: this release's api and worker run against a
//! database the next release has already migrated.

use testkit::TestApp;
use testkit::app::Options;

/// What an additive next release might do: a column, a table, an index.
const NEXT_RELEASE: &str = "
    alter table users add column locale text;
    create table audit_log (audit_id uuid primary key, user_id uuid references users (user_id));
    create index audit_log_user_id_idx on audit_log (user_id);
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_release_runs_on_a_database_migrated_by_the_next_one() {
    let mut app = TestApp::spawn_with(Options {
        worker: true,
        next_release_migration: Some(NEXT_RELEASE),
        ..Options::default()
    })
    .await;

    let signup = app.sign_up("rollback@example.com", "Rolled Back").await;

    let job = testkit::job_id(&signup, "welcome-email");
    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(&job).await, "completed");
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    let known = store::db::migrator().iter().count() as i64;
    assert_eq!(
        applied,
        known + 1,
        "the next release's migration is still there"
    );
}
