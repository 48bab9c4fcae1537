//! Tracing set-up shared by both binaries: log lines, and, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, traces over OTLP/HTTP, with the
//! trace context carried from a request to the jobs it records.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

/// Keeps the trace exporter alive; dropping it sends what is buffered.
#[must_use = "dropping it at once stops trace export"]
pub struct Telemetry(Option<SdkTracerProvider>);

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("could not flush traces: {error}");
        }
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides the default filter,
/// which keeps our crates at `info` and chatty dependencies at `warn`. With
/// `otlp_endpoint` (`OTEL_EXPORTER_OTLP_ENDPOINT`, e.g.
/// `http://collector:4318`), spans also go out as traces of `service`.
pub fn init(format: LogFormat, service: &'static str, otlp_endpoint: Option<&str>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,bullmq=warn,tower_http=info"));
    let provider = otlp_endpoint.and_then(|endpoint| match tracer_provider(service, endpoint) {
        Ok(provider) => Some(provider),
        Err(error) => {
            // The endpoint may carry credentials (`https://user:key@…`),
            // and the exporter's errors quote it: the setting is named instead.
            let mut error = format!("{error:#}");
            let quoted = endpoint.trim_end_matches('/');
            if !quoted.is_empty() {
                error = error.replace(quoted, "<OTEL_EXPORTER_OTLP_ENDPOINT>");
            }
            eprintln!("traces are off: OTEL_EXPORTER_OTLP_ENDPOINT cannot be used: {error}");
            None
        }
    });
    let traces = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer(service)));
    let registry = tracing_subscriber::registry().with(filter).with(traces);
    // `try_init` so a test that builds several apps in one process does not panic.
    let _ = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_span_events(FmtSpan::NONE)
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_span_events(FmtSpan::NONE)
                    .compact(),
            )
            .try_init(),
    };
    Telemetry(provider)
}

/// Batches spans and posts them to `<endpoint>/v1/traces` as protobuf, on
/// our own HTTP client (our TLS stack, no second HTTP library).
fn tracer_provider(service: &'static str, endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    let client = crate::http::builder()?
        .timeout(Duration::from_secs(10))
        .build()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(OtlpClient {
            client,
            runtime: tokio::runtime::Handle::try_current()?,
        })
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The exporter's HTTP client: reqwest, driven on the tokio runtime (the
/// SDK's batch thread has none of its own).
#[derive(Debug)]
struct OtlpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let (parts, body) = request.into_parts();
        let sent = self.runtime.spawn(async move {
            // Built, not converted: reqwest then moves a URL's
            // `user:password@` (the collector's credentials) into an
            // Authorization header marked sensitive, so they are sent, and
            // neither its errors nor its connection pool's trace lines,
            // which name the URL, show them.
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut answer = http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>(answer.body(body))
        });
        Ok(sent.await???)
    }
}

/// The W3C `traceparent` of the current span, to store with the jobs a
/// request records; `None` when traces are off.
pub fn current_trace_parent() -> Option<String> {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the span that recorded its job (`trace_parent`
/// as [`current_trace_parent`] wrote it), so a job's trace continues its
/// request's. Nothing happens when traces are off.
pub fn continue_trace(span: &tracing::Span, trace_parent: &str) {
    let carrier = HashMap::from([("traceparent".to_owned(), trace_parent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    // Fails only when the span has no OpenTelemetry data, i.e. traces are off.
    let _ = span.set_parent(parent);
}
