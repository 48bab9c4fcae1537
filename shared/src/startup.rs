//! The start of both binaries, written once: `.env`, the settings (every
//! problem reported at once, then exit 1), and telemetry.

use std::process::ExitCode;

use crate::config::{self, Settings};
use crate::telemetry;

/// Reads `./.env` and the environment. On a problem, prints it for the
/// operator and returns the exit code the process should end with.
pub fn settings() -> Result<Settings, ExitCode> {
    let read = config::load_dotenv().and_then(|()| Settings::from_env().map_err(|e| e.to_string()));
    read.map_err(|message| {
        // Before telemetry: stderr is all there is.
        eprintln!("{message}");
        ExitCode::FAILURE
    })
}

/// Logs (and traces, with an OTLP endpoint) for the service `name`, until
/// the guard is dropped.
pub fn telemetry(settings: &Settings, name: &'static str) -> telemetry::Telemetry {
    let telemetry_settings = &settings.telemetry;
    telemetry::init(
        telemetry_settings.log_format,
        name,
        telemetry_settings.otlp_endpoint.as_deref(),
    )
}
