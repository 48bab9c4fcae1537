//! Settings with a syntax of their own.

use std::str::FromStr;

/// Which pages on other origins may call the api from a browser. The api's
/// own web app is same-origin and needs none of this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers: only the api's own pages (unset).
    #[default]
    SameOrigin,
    /// Any origin (`*`). Safe for an api that authenticates with a bearer
    /// header and sets no cookies, but it lets any site spend a user's
    /// token if it has one.
    Any,
    /// Exactly these origins, e.g. `https://app.example.com`.
    List(Vec<String>),
}

impl FromStr for CorsOrigins {
    type Err = String;

    /// A comma-separated list of `scheme://host[:port]`, or `*`.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let items: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .collect();
        if items.is_empty() {
            return Ok(Self::SameOrigin);
        }
        if items == ["*"] {
            return Ok(Self::Any);
        }
        items
            .into_iter()
            .map(|item| {
                // Browsers send the origin without a path; a trailing slash
                // is a common way to write it, so it is forgiven.
                let origin = item.strip_suffix('/').unwrap_or(item);
                let (scheme, rest) = origin.split_once("://").ok_or_else(|| {
                    format!("`{item}` is not an origin like https://app.example.com")
                })?;
                let host_ok = !rest.is_empty()
                    && rest
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
                if !matches!(scheme, "http" | "https") || !host_ok {
                    return Err(format!(
                        "`{item}` is not an origin like https://app.example.com (scheme, host, optional port; no path; `*` alone allows any)"
                    ));
                }
                Ok(origin.to_ascii_lowercase())
            })
            .collect::<Result<_, _>>()
            .map(Self::List)
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

impl CorsOrigins {
    /// The variable's value that reads back as `self`.
    pub fn to_env(&self) -> String {
        match self {
            Self::SameOrigin => String::new(),
            Self::Any => "*".to_owned(),
            Self::List(origins) => origins.join(","),
        }
    }
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
