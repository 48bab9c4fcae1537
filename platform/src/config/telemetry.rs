//! Logs and traces.

use std::fmt;
use std::str::FromStr;

use super::variables::{Optional, Parsed, variables};

/// Logs and traces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetrySettings {
    /// Where traces go over OTLP/HTTP, e.g. `http://collector:4318`; `None`
    /// sends none (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp_endpoint: Option<String>,
    /// `json` for log shippers, `pretty` for humans (`LOG_FORMAT`).
    pub log_format: LogFormat,
}

variables! {
    TelemetrySettings {
        otlp_endpoint: Optional("OTEL_EXPORTER_OTLP_ENDPOINT"),
        log_format: Parsed("LOG_FORMAT", LogFormat::Json),
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for production log pipelines.
    Json,
    /// Coloured, multi-field lines for a developer's terminal.
    Pretty,
}

impl LogFormat {
    /// The variable's value that reads back as `self`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Pretty => "pretty",
        }
    }
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            other => Err(format!("expected `json` or `pretty`, got `{other}`")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
