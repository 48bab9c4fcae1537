//! `api`: serves the HTTP API. `api migrate` applies migrations and exits
//! (the Procfile's release step).

use std::process::ExitCode;

use shared::config::Settings;

#[tokio::main]
async fn main() -> ExitCode {
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
    shared::telemetry::init(settings.log_format);
    let command = std::env::args().nth(1);
    let outcome = match command.as_deref() {
        None => serve(&settings).await,
        Some("migrate") => migrate(&settings).await,
        Some(other) => {
            eprintln!("unknown command `{other}`; usage: api [migrate]");
            return ExitCode::from(2);
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
    app.run_until(shared::shutdown::signal()).await
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    shared::db::migrated_pool(settings).await?;
    tracing::info!("migrations applied");
    Ok(())
}
