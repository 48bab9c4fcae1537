//! `worker`: processes background jobs.
//!
//! ```text
//! worker                                   consume every queue
//! worker --queues <name>[,<name>…]         consume only these (scale heavy queues apart)
//! worker counts                            jobs per state in every queue
//! worker failed list <queue>               the dead-letter set, newest first
//! worker failed retry <queue> <id>|--all   move failed jobs back to the queue
//! ```

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use shared::config::Settings;
use shared::jobs::QueueName;
use worker::dead_letters::DeadLetters;

const USAGE: &str = "usage: worker [--queues <name>[,<name>…]]
       worker counts
       worker failed list <queue>
       worker failed retry <queue> <id>|--all";

enum Command {
    Run(Vec<QueueName>),
    Counts,
    ListFailed(QueueName),
    RetryFailed(QueueName, Option<String>),
}

#[tokio::main]
async fn main() -> ExitCode {
    let command = match parse(std::env::args().skip(1).collect()) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(message) = shared::config::load_dotenv() {
        eprintln!("{message}");
        return ExitCode::FAILURE;
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match command {
        Command::Run(queues) => {
            shared::telemetry::init(settings.log_format);
            worker::runtime::run(&settings, &queues, shared::shutdown::signal()).await
        }
        Command::Counts => counts(&settings).await,
        Command::ListFailed(queue) => list_failed(&settings, queue).await,
        Command::RetryFailed(queue, id) => retry_failed(&settings, queue, id).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: Vec<String>) -> Result<Command, String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let queue = |name: &str| name.parse::<QueueName>();
    match args.as_slice() {
        [] => Ok(Command::Run(QueueName::ALL.to_vec())),
        ["--queues", list] => Ok(Command::Run(
            list.split(',').map(queue).collect::<Result<_, _>>()?,
        )),
        ["counts"] => Ok(Command::Counts),
        ["failed", "list", name] => Ok(Command::ListFailed(queue(name)?)),
        ["failed", "retry", name, "--all"] => Ok(Command::RetryFailed(queue(name)?, None)),
        ["failed", "retry", name, id] => {
            Ok(Command::RetryFailed(queue(name)?, Some((*id).to_owned())))
        }
        _ => Err(format!("unexpected arguments: {}", args.join(" "))),
    }
}

async fn counts(settings: &Settings) -> anyhow::Result<()> {
    let queues = shared::queue::JobQueues::new(settings);
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
    Ok(())
}

async fn list_failed(settings: &Settings, queue: QueueName) -> anyhow::Result<()> {
    let jobs = DeadLetters::new(settings)?.list(queue).await?;
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
    Ok(())
}

async fn retry_failed(
    settings: &Settings,
    queue: QueueName,
    id: Option<String>,
) -> anyhow::Result<()> {
    let dead_letters = DeadLetters::new(settings)?;
    let mut out = std::io::stdout().lock();
    match id {
        None => {
            let retried = dead_letters.retry_all(queue).await?;
            writeln!(out, "retried {retried} job(s) in {queue}")?;
        }
        Some(id) => {
            let retried = dead_letters.retry(queue, &id).await?;
            anyhow::ensure!(retried, "no failed job {id} in {queue}");
            writeln!(out, "retried {id}").context("cannot write to stdout")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn commands_parse_and_unknown_queues_are_refused() {
        assert!(matches!(parse(args("")), Ok(Command::Run(q)) if q == QueueName::ALL));
        assert!(
            matches!(parse(args("--queues welcome-email")), Ok(Command::Run(q)) if q.len() == 1)
        );
        assert!(matches!(
            parse(args("failed retry welcome-email --all")),
            Ok(Command::RetryFailed(_, None))
        ));
        assert!(matches!(
            parse(args("failed retry welcome-email abc")),
            Ok(Command::RetryFailed(_, Some(id))) if id == "abc"
        ));
        assert!(matches!(parse(args("counts")), Ok(Command::Counts)));
        assert!(parse(args("failed list nope")).is_err());
        assert!(parse(args("--bogus")).is_err());
    }
}
