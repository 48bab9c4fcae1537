//! HTTP client set-up: TLS on the ring provider with the Mozilla root store (the
//! same stack as sqlx, redis and lettre), so there is one crypto library in
//! the process; reqwest's default would add aws-lc.

use std::sync::Arc;

use anyhow::Context as _;

/// A client builder with our TLS set up; callers add their own timeouts
/// (object storage here, third-party APIs in the worker).
pub fn builder() -> anyhow::Result<reqwest::ClientBuilder> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("ring supports the default TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder().tls_backend_preconfigured(tls))
}
