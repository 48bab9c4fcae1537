//! The start of both binaries, written once: `.env`, the settings (every
//! problem reported at once, then exit 1), and telemetry.

use crate::config;

use crate::config::Settings;
use crate::telemetry;

/// Reads `./.env` and the environment. On a problem, prints every one of
/// them for the operator and exits 1, before anything has started (as
/// clap exits 2 on wrong usage).
pub fn settings() -> Settings {
    let read = config::load_dotenv().and_then(|()| Settings::from_env().map_err(|e| e.to_string()));
    read.unwrap_or_else(|message| {
        // Before telemetry: stderr is all there is.
        eprintln!("{message}");
        std::process::exit(1)
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
