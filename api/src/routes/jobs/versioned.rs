//! A job's status with its owner and version: what the live streams
//! (`crate::events`) read, changed jobs by id or a user's since a cursor.

use chrono::{DateTime, Utc};
use store::records::JobState;
use uuid::Uuid;

use super::{JobStatus, StatusRow};

/// A job's status with its owner and version, for the live streams.
pub(crate) struct Versioned {
    /// Whose job it is: only their streams are told.
    pub owner: Uuid,
    /// When its record last changed, in microseconds since 1970: a later
    /// version of a job is never followed by an earlier one on a stream.
    pub version: i64,
    /// What `GET /api/jobs/{id}` answers.
    pub status: JobStatus,
}

/// A `jobs` row as [`Versioned`] needs it.
struct VersionedRow {
    user_id: Uuid,
    updated_at: DateTime<Utc>,
    job_id: Uuid,
    queue: String,
    state: JobState,
    attempts_made: i32,
    max_attempts: i32,
    progress: i16,
    result: Option<serde_json::Value>,
    error_code: Option<String>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    run_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl JobStatus {
    /// The job's id.
    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    /// The queue, which is the job's kind.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether the job has ended (completed or failed).
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.state, JobState::Completed | JobState::Failed)
    }

    /// Whether the job is done for good (completed).
    pub(crate) fn is_completed(&self) -> bool {
        self.state == JobState::Completed
    }

    /// The records of `jobs`, and those created in the last minute by
    /// `new_of` (whose new jobs the feed announced without naming them).
    pub(crate) async fn load_changed(
        pool: &sqlx::PgPool,
        jobs: &[Uuid],
        new_of: &[Uuid],
    ) -> Result<Vec<Versioned>, sqlx::Error> {
        let rows = sqlx::query_as!(
            VersionedRow,
            r#"select user_id as "user_id!", updated_at, job_id, queue, state as "state: JobState",
                      attempts_made, max_attempts, progress, result, error_code, error,
                      created_at, run_at, started_at, finished_at
               from jobs
               where user_id is not null
                 and (job_id = any($1)
                      or (user_id = any($2) and created_at > now() - interval '1 minute'))
               order by updated_at"#,
            jobs,
            new_of,
        )
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().map(Versioned::from).collect())
    }

    /// `user`'s jobs whose records changed after `since`, oldest change
    /// first, at most `limit` of them.
    pub(crate) async fn load_since(
        pool: &sqlx::PgPool,
        user: Uuid,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Versioned>, sqlx::Error> {
        let rows = sqlx::query_as!(
            VersionedRow,
            r#"select user_id as "user_id!", updated_at, job_id, queue, state as "state: JobState",
                      attempts_made, max_attempts, progress, result, error_code, error,
                      created_at, run_at, started_at, finished_at
               from jobs
               where user_id = $1 and updated_at > $2
               order by updated_at
               limit $3"#,
            user,
            since,
            limit,
        )
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().map(Versioned::from).collect())
    }
}

impl From<VersionedRow> for Versioned {
    fn from(row: VersionedRow) -> Self {
        Self {
            owner: row.user_id,
            version: row.updated_at.timestamp_micros(),
            status: JobStatus::from(StatusRow {
                job_id: row.job_id,
                queue: row.queue,
                state: row.state,
                attempts_made: row.attempts_made,
                max_attempts: row.max_attempts,
                progress: row.progress,
                result: row.result,
                error_code: row.error_code,
                error: row.error,
                created_at: row.created_at,
                run_at: row.run_at,
                started_at: row.started_at,
                finished_at: row.finished_at,
            }),
        }
    }
}
