//! `worker`: processes background jobs, and the operators' commands on the
//! queues (`worker --help` lists them). `worker healthcheck` probes a
//! running worker's `/healthz` on `WORKER_HTTP_PORT` (the container's
//! health check, with no curl in the image).
//!
//! Exit codes: 0 done; 1 failed (Redis or Postgres unreachable, bad
//! configuration); 2 wrong usage; 3 nothing matched (no such failed job).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use catalogue::{MaintenanceTask, QueueName};
use clap::{Args, Parser, Subcommand};
use platform::config::Settings;
use queue::JobQueues;
use queue::dead_letters::DeadLetters;

/// Processes the background jobs the api records (email, Stripe, Slack, the
/// onboarding guide, photos), and lets operators look at and steer the queues.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Consume only these queues (comma-separated), e.g. to scale image-resize apart.
    #[arg(long, value_delimiter = ',', value_parser = parse_queue, global = false)]
    queues: Option<Vec<QueueName>>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Consume the queues until SIGTERM or Ctrl-C (the default).
    Run {
        /// Consume only these queues (comma-separated).
        #[arg(long, value_delimiter = ',', value_parser = parse_queue)]
        queues: Option<Vec<QueueName>>,
    },
    /// Jobs per state in every queue.
    Counts,
    /// The dead-letter sets: jobs that used up their attempts.
    #[command(subcommand)]
    Failed(Failed),
    /// Stop or restart handing out a queue's jobs, on every worker.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// The scheduled housekeeping, run now by hand.
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
    /// Exit 0 if the worker on this machine's WORKER_HTTP_PORT answers
    /// /healthz with 200 (503 while it drains), else 1 (for container
    /// health checks).
    Healthcheck,
}

#[derive(Subcommand)]
enum MaintenanceCommand {
    /// Run one task now (or every task), and print what it removed.
    Run {
        /// purge-expired-tokens, prune-job-records, clean-photos or
        /// abort-multipart-uploads; all when omitted.
        #[arg(value_parser = |name: &str| name.parse::<MaintenanceTask>())]
        task: Option<MaintenanceTask>,
    },
}

#[derive(Subcommand)]
enum Failed {
    /// The failed jobs of a queue, newest first, with their reasons.
    List {
        #[arg(value_parser = parse_queue)]
        queue: QueueName,
    },
    /// Move failed jobs back to their queue, to run again.
    Retry(Pick),
    /// Delete failed jobs from Redis (their records stay `failed`).
    Remove(Pick),
}

/// One failed job by id, or all of a queue's.
#[derive(Args)]
struct Pick {
    #[arg(value_parser = parse_queue)]
    queue: QueueName,
    /// The job's id.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    id: Option<String>,
    /// Every failed job of the queue.
    #[arg(long)]
    all: bool,
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Workers stop taking the queue's jobs (running ones finish); jobs keep arriving.
    Pause {
        #[arg(value_parser = parse_queue)]
        queue: QueueName,
    },
    /// Workers take the queue's jobs again.
    Resume {
        #[arg(value_parser = parse_queue)]
        queue: QueueName,
    },
}

fn parse_queue(name: &str) -> Result<QueueName, String> {
    name.parse::<QueueName>()
}

/// How a command ended, for scripts.
enum Outcome {
    Done,
    NothingMatched,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Usage errors exit 2, --help and --version 0, as clap does.
    let cli = Cli::parse();
    let settings = platform::startup::settings();
    let command = cli.command.unwrap_or(Command::Run { queues: cli.queues });
    let outcome = match command {
        Command::Run { queues } => {
            let _telemetry = platform::startup::telemetry(&settings, "worker");
            let queues = queues.unwrap_or_else(|| QueueName::ALL.to_vec());
            worker::runtime::run(&settings, &queues, platform::shutdown::signal())
                .await
                .map(|()| Outcome::Done)
        }
        Command::Counts => counts(&settings).await,
        Command::Failed(Failed::List { queue }) => list_failed(&settings, queue).await,
        Command::Failed(Failed::Retry(pick)) => act_on_failed(&settings, pick, Act::Retry).await,
        Command::Failed(Failed::Remove(pick)) => act_on_failed(&settings, pick, Act::Remove).await,
        Command::Queue(QueueCommand::Pause { queue }) => pause(&settings, queue, true).await,
        Command::Queue(QueueCommand::Resume { queue }) => pause(&settings, queue, false).await,
        Command::Maintenance(MaintenanceCommand::Run { task }) => maintain(&settings, task).await,
        Command::Healthcheck => return healthcheck(&settings).await,
    };
    match outcome {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::NothingMatched) => ExitCode::from(3),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn healthcheck(settings: &Settings) -> ExitCode {
    let Some(port) = settings.worker.http_port else {
        eprintln!("unhealthy: WORKER_HTTP_PORT is 0, so the worker serves no /healthz to probe");
        return ExitCode::FAILURE;
    };
    // The worker listens on every interface (see `worker::http::bind`).
    platform::health::command("0.0.0.0", port, "/healthz").await
}

async fn counts(settings: &Settings) -> anyhow::Result<Outcome> {
    let queues = JobQueues::new(&settings.redis, settings.queues);
    let mut out = std::io::stdout().lock();
    for &queue in QueueName::ALL {
        let c = queues
            .counts(queue)
            .await
            .with_context(|| format!("cannot count the jobs of {queue}"))?;
        writeln!(
            out,
            "{queue}\twaiting={}\tactive={}\tdelayed={}\tcompleted={}\tfailed={}\tpaused={}",
            c.waiting, c.active, c.delayed, c.completed, c.failed, c.paused
        )?;
    }
    Ok(Outcome::Done)
}

async fn list_failed(settings: &Settings, queue: QueueName) -> anyhow::Result<Outcome> {
    let (queues, pool) = (
        JobQueues::new(&settings.redis, settings.queues),
        store::db::pool(&settings.database)?,
    );
    let jobs = DeadLetters::new(&queues, &pool).list(queue, None).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} failed job(s) in {queue}", jobs.len())?;
    for job in jobs {
        let failed_at = job
            .failed_at
            .and_then(|ms| chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?))
            .map_or_else(|| "-".to_owned(), |at| at.to_rfc3339());
        writeln!(
            out,
            "{}\tattempts={}\tfailed_at={failed_at}\t{}",
            job.id, job.attempts_made, job.reason
        )?;
    }
    Ok(Outcome::Done)
}

/// What `worker failed retry|remove` does to the picked jobs.
#[derive(Clone, Copy)]
enum Act {
    Retry,
    Remove,
}

async fn act_on_failed(settings: &Settings, pick: Pick, act: Act) -> anyhow::Result<Outcome> {
    let (queues, pool) = (
        JobQueues::new(&settings.redis, settings.queues),
        store::db::pool(&settings.database)?,
    );
    let dead_letters = DeadLetters::new(&queues, &pool);
    let queue = pick.queue;
    let mut out = std::io::stdout().lock();
    let Some(id) = pick.id else {
        let done = match act {
            Act::Retry => dead_letters.retry_all(queue).await?,
            Act::Remove => dead_letters.remove_all(queue).await?,
        };
        match act {
            Act::Retry => writeln!(out, "retried {done} job(s) in {queue}")?,
            Act::Remove => writeln!(out, "removed {done} job(s) from {queue}")?,
        }
        return Ok(Outcome::Done);
    };
    let (done, verb) = match act {
        Act::Retry => (dead_letters.retry(queue, &id).await?, "retried"),
        Act::Remove => (dead_letters.remove(queue, &id).await?, "removed"),
    };
    if !done {
        eprintln!("no failed job {id} in {queue}");
        return Ok(Outcome::NothingMatched);
    }
    writeln!(out, "{verb} {id}")?;
    Ok(Outcome::Done)
}

async fn maintain(settings: &Settings, task: Option<MaintenanceTask>) -> anyhow::Result<Outcome> {
    let ctx = worker::context::JobContext::build(settings)?;
    let tasks = task.map_or(MaintenanceTask::ALL.to_vec(), |task| vec![task]);
    let mut out = std::io::stdout().lock();
    for task in tasks {
        let done = worker::jobs::maintenance::run(&ctx, task, None)
            .await
            .map_err(|error| anyhow::anyhow!("{} failed: {error}", task.as_str()))?;
        writeln!(out, "{}\t{}", task.as_str(), done["removed"])?;
    }
    Ok(Outcome::Done)
}

async fn pause(settings: &Settings, queue: QueueName, paused: bool) -> anyhow::Result<Outcome> {
    let queues = JobQueues::new(&settings.redis, settings.queues);
    queues
        .set_paused(queue, paused)
        .await
        .with_context(|| format!("cannot {} {queue}", if paused { "pause" } else { "resume" }))?;
    writeln!(
        std::io::stdout().lock(),
        "{queue} {}",
        if paused { "paused" } else { "resumed" }
    )?;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("worker").chain(line.split_whitespace()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn commands_parse_and_unknown_queues_are_refused() {
        let run = parse("").expect("bare worker runs");
        assert!(run.command.is_none() && run.queues.is_none());
        let some = parse("--queues welcome-email,image-resize").expect("queues");
        assert_eq!(some.queues.map(|q| q.len()), Some(2));
        assert!(matches!(
            parse("failed retry welcome-email --all")
                .expect("retry all")
                .command,
            Some(Command::Failed(Failed::Retry(Pick {
                id: None,
                all: true,
                ..
            })))
        ));
        assert!(matches!(
            parse("failed remove welcome-email abc").expect("remove one").command,
            Some(Command::Failed(Failed::Remove(Pick { id: Some(id), .. }))) if id == "abc"
        ));
        assert!(matches!(
            parse("queue pause image-resize").expect("pause").command,
            Some(Command::Queue(QueueCommand::Pause {
                queue: QueueName::ImageResize
            }))
        ));
        assert!(parse("failed list nope").is_err(), "unknown queue");
        assert!(
            parse("failed retry welcome-email").is_err(),
            "an id or --all"
        );
        assert!(
            parse("failed retry welcome-email abc --all").is_err(),
            "not both"
        );
        assert!(matches!(
            parse("healthcheck").expect("healthcheck").command,
            Some(Command::Healthcheck)
        ));
        assert!(parse("--bogus").is_err());
    }
}
