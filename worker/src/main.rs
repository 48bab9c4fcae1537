//! `worker`: processes background jobs. `worker --queues a,b` consumes only
//! the named queues, so heavy queues can be scaled on their own.

use std::process::ExitCode;

use shared::config::Settings;
use shared::jobs::QueueName;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let queues = match queues_from_args(std::env::args().skip(1)) {
        Ok(queues) => queues,
        Err(message) => {
            eprintln!("{message}\nusage: worker [--queues <name>[,<name>…]]");
            return ExitCode::from(2);
        }
    };
    shared::telemetry::init(settings.log_format);
    match worker::runtime::run(&settings, &queues, shared::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "worker stopped");
            ExitCode::FAILURE
        }
    }
}

fn queues_from_args(mut args: impl Iterator<Item = String>) -> Result<Vec<QueueName>, String> {
    match (args.next().as_deref(), args.next()) {
        (None, _) => Ok(QueueName::ALL.to_vec()),
        (Some("--queues"), Some(list)) => list.split(',').map(str::parse).collect(),
        (Some(other), _) => Err(format!("unexpected argument `{other}`")),
    }
}
