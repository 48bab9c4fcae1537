//! `api`: serves the HTTP API and the web app. `api migrate` applies the
//! migrations and exits (the Procfile's release step); `api healthcheck`
//! probes a running api's `/healthz` on `HOST`/`PORT` (the container's
//! health check, with no curl in the image).
//!
//! Exit codes: 0 done; 1 failed (bad configuration, Postgres unreachable,
//! port taken); 2 wrong usage.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use platform::config::Settings;

/// The HTTP API of the Acme backend: validates, writes, records the slow
/// work for the worker, and answers in milliseconds.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP until SIGTERM or Ctrl-C (the default); migrates first.
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Exit 0 if the api on this machine's PORT answers /healthz with 200,
    /// else 1 (for container health checks).
    Healthcheck,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Usage errors exit 2, --help and --version 0, as clap does.
    let cli = Cli::parse();
    let settings = platform::startup::settings();
    let command = cli.command.unwrap_or(Command::Serve);
    // None for a probe: it runs every few seconds and must not log or export.
    let _telemetry = (!matches!(command, Command::Healthcheck))
        .then(|| platform::startup::telemetry(&settings, "api"));
    let outcome = match command {
        Command::Serve => serve(&settings).await,
        Command::Migrate => migrate(&settings).await,
        Command::Healthcheck => {
            let server = &settings.server;
            return platform::health::command(&server.host, server.port, "/healthz").await;
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "api stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let app = api::Application::build(settings).await?;
    app.run_until(platform::shutdown::signal()).await
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    store::db::migrated_pool(&settings.database).await?;
    tracing::info!("migrations applied");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent_and_refuses_strangers() {
        Cli::command().debug_assert();
        assert!(Cli::try_parse_from(["api"]).is_ok_and(|cli| cli.command.is_none()));
        assert!(Cli::try_parse_from(["api", "migrate"]).is_ok());
        assert!(Cli::try_parse_from(["api", "healthcheck"]).is_ok());
        assert!(Cli::try_parse_from(["api", "migrat"]).is_err());
    }
}
