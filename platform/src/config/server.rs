//! The api's HTTP server: where it listens, what a connection must do to
//! keep its slot, and who may call it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use super::variables::{
    Env, Nested, Optional, Parsed, SECOND, Secret, Secs, Text, Variable, Vars, push, variables,
};

/// The api's HTTP server.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address the api listens on (`HOST`).
    pub host: String,
    /// Port the api listens on (`PORT`).
    pub port: u16,
    /// Connection and body limits against slow or greedy clients.
    pub http: HttpLimits,
    /// Pages on other origins allowed to call the api from a browser
    /// (`CORS_ALLOWED_ORIGINS`).
    pub cors_allowed_origins: CorsOrigins,
    /// Header carrying the client address, appended by a trusted reverse
    /// proxy, e.g. `X-Forwarded-For`; unset: the TCP peer (`CLIENT_IP_HEADER`).
    pub client_ip_header: Option<String>,
    /// Bearer token a scraper must send to read the api's `/metrics`;
    /// `None` leaves it open (`METRICS_TOKEN`).
    pub metrics_token: Option<SecretString>,
    /// How long an unchanged job status or job list is answered 304 from
    /// memory before the database is asked again: the bound on how late a
    /// change is seen whose publish on the change feed never came (a
    /// writer killed after its commit, an operator's SQL, a worker whose
    /// own Redis connection is dead) (`POLL_MEMORY_MAX_AGE_SECS`, 1 to 60).
    pub poll_memory_max_age: Duration,
}

variables! {
    ServerSettings {
        host: Text("HOST", "0.0.0.0"),
        port: Parsed("PORT", 3000),
        http: Nested,
        cors_allowed_origins: Parsed("CORS_ALLOWED_ORIGINS", CorsOrigins::SameOrigin),
        client_ip_header: Optional("CLIENT_IP_HEADER"),
        metrics_token: Secret("METRICS_TOKEN"),
        poll_memory_max_age: Secs("POLL_MEMORY_MAX_AGE_SECS", 5)
            .at_least(SECOND)
            .at_most(Duration::from_secs(60)),
    }
}

/// What a client must do to keep its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time to send a request's headers, from its first byte (`HTTP_HEADER_TIMEOUT_SECS`).
    pub header_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed
    /// (`HTTP_IDLE_TIMEOUT_SECS`); keep it above a load balancer's own idle timeout.
    pub idle_timeout: Duration,
    /// A request body must bring at least this many bytes per second…
    /// (`HTTP_BODY_MIN_BYTES_PER_SEC`)
    pub body_min_rate: u64,
    /// …measured over windows this long; a window with less (or nothing) cuts
    /// the request off with 408 (`HTTP_BODY_WINDOW_SECS`).
    pub body_window: Duration,
    /// Open connections per instance; more are answered 503 at once and
    /// closed (`HTTP_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// A new connection must send its first byte within this
    /// (`HTTP_FIRST_BYTE_TIMEOUT_SECS`): a browser's preconnect is used
    /// within seconds, a silent connection holds a slot for nothing.
    pub first_byte_timeout: Duration,
    /// Open connections per client address (an IPv6 /64) per instance; 0
    /// turns the cap off, as it is by default behind a proxy
    /// (`CLIENT_IP_HEADER`), whose address every connection has
    /// (`HTTP_MAX_CONNECTIONS_PER_CLIENT`).
    pub max_connections_per_client: usize,
}

variables! {
    HttpLimits {
        header_timeout: Secs("HTTP_HEADER_TIMEOUT_SECS", 10).at_least(SECOND),
        idle_timeout: Secs("HTTP_IDLE_TIMEOUT_SECS", 75).at_least(SECOND),
        body_min_rate: Parsed("HTTP_BODY_MIN_BYTES_PER_SEC", 1024),
        body_window: Secs("HTTP_BODY_WINDOW_SECS", 10).at_least(SECOND),
        max_connections: Parsed("HTTP_MAX_CONNECTIONS", 1024).at_least(1),
        first_byte_timeout: Secs("HTTP_FIRST_BYTE_TIMEOUT_SECS", 10).at_least(SECOND),
        max_connections_per_client: PerClient("HTTP_MAX_CONNECTIONS_PER_CLIENT"),
    }
}

/// The cap per client address: 64 by default, none behind a proxy
/// (`CLIENT_IP_HEADER` set), where every connection has the proxy's address.
struct PerClient(&'static str);

impl Variable<usize> for PerClient {
    fn read(&self, env: &mut Env<'_>) -> usize {
        let behind_a_proxy = env.get("CLIENT_IP_HEADER").is_some();
        env.parsed(self.0, if behind_a_proxy { 0 } else { 64 })
    }

    fn write(&self, value: &usize, vars: &mut Vars) {
        push(vars, self.0, value.to_string());
    }
}

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
        let items: Vec<&str> = super::variables::items(raw).collect();
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

/// The variable's value that reads back as the same origins.
impl fmt::Display for CorsOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SameOrigin => Ok(()),
            Self::Any => f.write_str("*"),
            Self::List(origins) => f.write_str(&origins.join(",")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::settings;

    #[test]
    fn behind_a_proxy_connections_are_not_capped_per_address_unless_asked() {
        let database = ("DATABASE_URL", "postgres://localhost/app");
        let proxy = ("CLIENT_IP_HEADER", "X-Forwarded-For");
        let behind = settings(&[database, proxy]).expect("valid");
        assert_eq!(behind.server.http.max_connections_per_client, 0);
        let asked = settings(&[database, proxy, ("HTTP_MAX_CONNECTIONS_PER_CLIENT", "500")])
            .expect("valid");
        assert_eq!(asked.server.http.max_connections_per_client, 500);
    }

    #[test]
    fn cors_origins_are_a_list_of_exact_origins_or_a_star() {
        let origins = |raw: &str| raw.parse::<CorsOrigins>();
        assert_eq!(origins(""), Ok(CorsOrigins::SameOrigin));
        assert_eq!(origins(" * "), Ok(CorsOrigins::Any));
        assert_eq!(
            origins("https://App.example.com/, http://localhost:5173"),
            Ok(CorsOrigins::List(vec![
                "https://app.example.com".into(),
                "http://localhost:5173".into()
            ]))
        );
        for wrong in [
            "app.example.com",
            "https://app.example.com/path",
            "ftp://x",
            "*, https://a.io",
        ] {
            assert!(origins(wrong).is_err(), "{wrong} was accepted");
        }
    }

    #[test]
    fn a_malformed_cors_origin_is_reported_at_start() {
        let error = settings(&[
            ("DATABASE_URL", "postgres://localhost/app"),
            ("CORS_ALLOWED_ORIGINS", "https://ok.io, not-an-origin"),
        ])
        .expect_err("refused");
        assert!(
            error.to_string().contains("CORS_ALLOWED_ORIGINS"),
            "{error}"
        );
    }

    #[test]
    fn the_poll_memory_bound_stays_between_one_second_and_a_minute() {
        let age = |raw: &str| {
            settings(&[
                ("DATABASE_URL", "postgres://localhost/app"),
                ("POLL_MEMORY_MAX_AGE_SECS", raw),
            ])
            .expect("valid")
            .server
            .poll_memory_max_age
        };
        assert_eq!(age("0"), Duration::from_secs(1));
        assert_eq!(age("30"), Duration::from_secs(30));
        assert_eq!(
            age("86400"),
            Duration::from_secs(60),
            "a bound, not a way to turn it off"
        );
    }
}
