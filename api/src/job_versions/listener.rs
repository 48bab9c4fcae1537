//! The listener that tells [`JobVersions`] of every changed job, and proves
//! every few seconds that it still hears.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};

use super::{CHANNEL, JobVersions};

/// Listens for changed jobs for as long as the api runs, reconnecting with
/// a growing pause (at most 10 s) when Postgres goes away; meanwhile every
/// poll asks the database. Holds one Postgres connection besides `pool`.
pub async fn follow(pool: PgPool, versions: &JobVersions) {
    let mut pause = FIRST_PAUSE;
    loop {
        let why = match listen(&pool).await {
            Ok(mut listener) => {
                let why = hear(&pool, &mut listener, versions, &mut pause).await;
                versions.reset(false);
                why
            }
            Err(error) => format!("cannot listen: {error}"),
        };
        tracing::warn!(
            reason = %why,
            retry_in = ?pause,
            "not told of changed jobs; polls ask the database until that is back"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// The pause before the first reconnection, and again once a probe came back.
const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// How often the listener proves it still hears: a connection to a
/// Postgres host that died (failover) can wait for ever without an error.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How long a probe may take to come back before the connection is given up.
const PROBE_DEADLINE: Duration = Duration::from_secs(5);
/// Payloads of the listener's own probes (a job id never starts so).
const PROBE: &str = "probe:";

/// Handles notifications until the connection fails or stops delivering,
/// and says why. Entries are trusted only from the first probe that came
/// back: then changes are known to arrive (a proxy pooling transactions,
/// for one, accepts `LISTEN` and delivers nothing).
async fn hear(
    pool: &PgPool,
    listener: &mut PgListener,
    versions: &JobVersions,
    pause: &mut Duration,
) -> String {
    let mut sent = 0_u64;
    let mut awaiting = false;
    let mut trigger_off = false;
    // One timer for the listener's life, moved rather than made anew for
    // every notification (thousands a second when the worker is busy).
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut changed = Vec::new();
    loop {
        tokio::select! {
            // Cancel-safe since sqlx 0.8.2: a probe's timer firing loses nothing.
            received = listener.try_recv() => {
                let first = match received {
                    Ok(Some(notification)) => notification,
                    Ok(None) => return "the connection was lost".to_owned(),
                    Err(error) => return error.to_string(),
                };
                // What else already arrived is handled under one lock.
                let buffered = std::iter::from_fn(|| listener.next_buffered());
                let mut unknown = false;
                for notification in std::iter::once(first).chain(buffered) {
                    let payload = notification.payload();
                    if let Some(probe) = payload.strip_prefix(PROBE) {
                        if awaiting && probe.parse() == Ok(sent) {
                            if !versions.is_live() {
                                versions.reset(true);
                                *pause = FIRST_PAUSE;
                            }
                            awaiting = false;
                            timer.as_mut().reset(tokio::time::Instant::now() + PROBE_EVERY);
                        }
                    } else if let Ok(job) = payload.parse() {
                        changed.push(job);
                    } else {
                        // `all` (the jobs were truncated: migration `…21`),
                        // or not ours: cannot tell what changed.
                        unknown = true;
                    }
                }
                versions.changed_all(&changed);
                changed.clear();
                if unknown {
                    versions.reset(versions.is_live());
                }
            }
            () = &mut timer => {
                if awaiting {
                    return format!("a probe did not come back within {PROBE_DEADLINE:?}");
                }
                sent += 1;
                // Sent only while both triggers are on in every session
                // (`A`lways: a plain `enable` leaves out sessions in
                // replica mode), so the probe proves both that changes are
                // told and that they arrive.
                let probe = sqlx::query(
                    "select pg_notify($1, $2)
                      where (select count(*) from pg_trigger
                              where tgrelid = 'jobs'::regclass
                                and tgname in ('jobs_changed', 'jobs_truncated')
                                and tgenabled = 'A') = 2",
                )
                .bind(CHANNEL)
                .bind(format!("{PROBE}{sent}"))
                .execute(pool)
                .await;
                match probe {
                    Err(error) => return format!("cannot send a probe: {error}"),
                    Ok(done) if done.rows_affected() == 0 => {
                        if !trigger_off {
                            tracing::warn!(
                                "the jobs_changed triggers are not enabled always: polls ask the database \
                                 (alter table jobs enable always trigger jobs_changed, and jobs_truncated)"
                            );
                            trigger_off = true;
                        }
                        versions.reset(false);
                        timer.as_mut().reset(tokio::time::Instant::now() + PROBE_EVERY);
                        continue;
                    }
                    Ok(_) => trigger_off = false,
                }
                awaiting = true;
                timer.as_mut().reset(tokio::time::Instant::now() + PROBE_DEADLINE);
            }
        }
    }
}

/// A listener on a connection of its own, outside `pool`: a listener given
/// up on a dead host cannot close cleanly (sqlx's `UNLISTEN` on drop waits
/// until the kernel gives the connection up, up to about 15 minutes), and
/// it must hold no connection the requests need meanwhile.
async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let own = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with((*pool.connect_options()).clone());
    let mut listener = PgListener::connect_with(&own).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
