//! An OTLP/HTTP trace collector in the test process: it keeps every span the
//! binaries export, decoded, so a test can follow one trace across them.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;

/// A span as the collector received it.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The exporting service (`service.name`).
    pub service: String,
    /// The span's name, e.g. `request`, `signup`, `job`.
    pub name: String,
    /// Hex trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Hex id of the parent span; empty for a root.
    pub parent_span_id: String,
}

/// A collector listening on a free port until dropped.
pub struct Collector {
    /// `http://127.0.0.1:<port>`: the `OTEL_EXPORTER_OTLP_ENDPOINT` to give.
    pub endpoint: String,
    received: Arc<Received>,
    server: tokio::task::JoinHandle<()>,
}

/// What the collector kept: the spans, and every export whole.
#[derive(Default)]
struct Received {
    spans: Mutex<Vec<ReceivedSpan>>,
    /// Each export request as text (its `Debug` form): every attribute,
    /// event and resource, for a test that searches what left the process.
    exports: Mutex<Vec<String>>,
}

impl Collector {
    /// Starts listening.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the collector");
        let endpoint = format!("http://{}", listener.local_addr().expect("bound"));
        let received = Arc::new(Received::default());
        let router = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(received.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            endpoint,
            received,
            server,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received.spans.lock().expect("not poisoned").clone()
    }

    /// Every export received so far, as text: span names, attributes and
    /// events (a span's log lines), resources.
    pub fn exports(&self) -> Vec<String> {
        self.received.exports.lock().expect("not poisoned").clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(State(kept): State<Arc<Received>>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
    kept.exports
        .lock()
        .expect("not poisoned")
        .push(format!("{request:?}"));
    let mut received = kept.spans.lock().expect("not poisoned");
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|resource| &resource.attributes)
            .find(|attribute| attribute.key == "service.name")
            .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
            .map(|value| match value {
                AnyValue::StringValue(name) => name.clone(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                received.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                });
            }
        }
    }
    ""
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
