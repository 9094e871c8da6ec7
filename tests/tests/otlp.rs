//! OTLP export of the message spans (`[telemetry] otlp_endpoint`): a real
//! `shep serve` sends its spans to a small OTLP/gRPC receiver in the test,
//! honours a caller's `traceparent`, exports nothing unless configured, and
//! keeps serving when the collector is not there.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use shep_proto::envelope::v1::SignedEnvelope;
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use shep_tests::*;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// The caller's trace and span in the lookup's `traceparent`.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";
const SERVICE_NAME: &str = "shep-sim-otlp-test";
/// How long exported spans may take to arrive (the batch delay is 100 ms).
const ARRIVAL: Duration = Duration::from_secs(15);

// === The receiver ===

/// An OTLP/gRPC collector that keeps every export request.
#[derive(Debug, Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.requests.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves a new receiver on a loopback port; returns it and its URL.
    async fn start() -> (Self, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let receiver = Self::default();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(receiver.clone()))
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        (receiver, url)
    }

    /// Every span received so far, flattened.
    fn spans(&self) -> Vec<Exported> {
        let requests = self.requests.lock().unwrap();
        let mut spans = Vec::new();
        for resource_spans in requests.iter().flat_map(|request| &request.resource_spans) {
            let resource = resource_spans
                .resource
                .as_ref()
                .map(|resource| attributes(&resource.attributes))
                .unwrap_or_default();
            for span in resource_spans
                .scope_spans
                .iter()
                .flat_map(|scope| &scope.spans)
            {
                spans.push(Exported {
                    service_name: resource.get("service.name").cloned().unwrap_or_default(),
                    name: span.name.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: attributes(&span.attributes),
                });
            }
        }
        spans
    }
}

/// One exported span, with its attributes as text.
#[derive(Debug, Clone)]
struct Exported {
    service_name: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: BTreeMap<String, String>,
}

impl Exported {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|pair| (pair.key.clone(), text(pair.value.as_ref())))
        .collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        Some(any_value::Value::IntValue(number)) => number.to_string(),
        Some(any_value::Value::BoolValue(flag)) => flag.to_string(),
        Some(any_value::Value::DoubleValue(number)) => number.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

// === The gateway ===

/// A `shep serve` whose configuration file is `config` (TOML), with `env`.
async fn serve(tmp: &TempDir, config: &str, env: &[(&str, &str)]) -> (ShepServe, PathBuf) {
    let data = tmp.path().join("data");
    let path = tmp.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config_arg = path.to_str().expect("a UTF-8 temporary path").to_owned();
    let server = ShepServe::start_with(
        addr,
        &data,
        &tmp.path().join("serve.log"),
        env,
        &["--config", &config_arg],
    )
    .await;
    (server, data)
}

fn telemetry(endpoint: &str) -> String {
    format!("[telemetry]\notlp_endpoint = \"{endpoint}\"\nservice_name = \"{SERVICE_NAME}\"\n")
}

/// A signed lookup of the demo applicant, its message id, and the request
/// carrying it with the caller's `traceparent`.
fn traced_lookup(data: &Path) -> (String, Request<SignedEnvelope>) {
    let applicant = applicant_of(data);
    let body = applicant.request(LOOKUP_SERVICE, iin(APPLICANT_IIN));
    let mut request = Request::new(applicant.seal(&body).unwrap());
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01")
            .parse()
            .unwrap(),
    );
    (body.message_id, request)
}

/// A signed application of the demo applicant and its message id.
fn application(data: &Path) -> (String, SignedEnvelope) {
    let applicant = applicant_of(data);
    let form = r#"{"child_iin":"061211600012","kind":"опека"}"#;
    let body = applicant.application(ESIL_SERVICE, iin(APPLICANT_IIN), form, Vec::new());
    (body.message_id.clone(), applicant.seal(&body).unwrap())
}

/// The `message` span of `message_id` and its `registry` child, once both
/// have arrived.
fn message_and_lookup(spans: &[Exported], message_id: &str) -> Option<(Exported, Exported)> {
    let message = spans
        .iter()
        .find(|span| span.name == "message" && span.attribute("message_id") == Some(message_id))?;
    let registry = spans.iter().find(|span| {
        span.name == "registry"
            && span.trace_id == message.trace_id
            && span.parent_span_id == message.span_id
    })?;
    Some((message.clone(), registry.clone()))
}

// === Tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_and_registry_spans_reach_the_collector_under_the_callers_trace() {
    let (receiver, endpoint) = Receiver::start().await;
    let tmp = TempDir::new("shep-otlp");
    let (server, data) = serve(
        &tmp,
        &telemetry(&endpoint),
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    )
    .await;
    let mut client = GatewayClient::new(connect(&server.url()).await);
    let (lookup_id, lookup) = traced_lookup(&data);
    client.call(lookup).await.expect("the lookup");
    let (submit_id, submit) = application(&data);
    client.submit(submit).await.expect("the submit");

    let (lookup, submit) = eventually(ARRIVAL, async || {
        let spans = receiver.spans();
        match (
            message_and_lookup(&spans, &lookup_id),
            message_and_lookup(&spans, &submit_id),
        ) {
            (Some(lookup), Some(submit)) => Ok((lookup, submit)),
            _ => Err(format!(
                "not yet both messages with their lookups: {spans:#?}"
            )),
        }
    })
    .await;

    let (message, registry) = lookup;
    assert_eq!(message.service_name, SERVICE_NAME, "{message:?}");
    assert_eq!(message.attribute("rpc"), Some("call"), "{message:?}");
    assert_eq!(
        message.attribute("service"),
        Some(LOOKUP_SERVICE),
        "{message:?}"
    );
    // The caller's trace, under the caller's span.
    assert_eq!(message.trace_id, TRACE_ID, "{message:?}");
    assert_eq!(message.parent_span_id, CALLER_SPAN_ID, "{message:?}");
    assert_eq!(registry.service_name, SERVICE_NAME, "{registry:?}");
    assert_eq!(
        registry.attribute("registry"),
        Some("gbdfl"),
        "{registry:?}"
    );
    assert_eq!(
        registry.attribute("key"),
        Some(APPLICANT_IIN),
        "{registry:?}"
    );

    let (message, registry) = submit;
    assert_eq!(message.service_name, SERVICE_NAME, "{message:?}");
    assert_eq!(message.attribute("rpc"), Some("submit"), "{message:?}");
    assert_eq!(
        message.attribute("service"),
        Some(ESIL_SERVICE),
        "{message:?}"
    );
    // No traceparent: a trace of its own, the message span its root.
    assert_ne!(message.trace_id, TRACE_ID, "{message:?}");
    assert_eq!(message.parent_span_id, "", "{message:?}");
    assert_eq!(registry.trace_id, message.trace_id, "{registry:?}");

    let status = server.interrupt().await;
    assert!(status.success(), "`shep serve` stopped with {status}");
}

/// With a batch delay far beyond the test, the spans can only arrive through
/// the flush of a graceful stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_sends_the_spans_still_queued() {
    let (receiver, endpoint) = Receiver::start().await;
    let tmp = TempDir::new("shep-otlp-stop");
    let (server, data) = serve(
        &tmp,
        &telemetry(&endpoint),
        &[("OTEL_BSP_SCHEDULE_DELAY", "600000")],
    )
    .await;
    let (lookup_id, lookup) = traced_lookup(&data);
    GatewayClient::new(connect(&server.url()).await)
        .call(lookup)
        .await
        .expect("the lookup");
    assert!(receiver.spans().is_empty(), "exported before the stop");
    let status = server.interrupt().await;
    assert!(status.success(), "`shep serve` stopped with {status}");
    let spans = receiver.spans();
    assert!(
        message_and_lookup(&spans, &lookup_id).is_some(),
        "the lookup's spans were not flushed at the stop: {spans:#?}"
    );
}

/// The standard OTLP variables alone turn nothing on: without
/// `telemetry.otlp_endpoint` no span leaves the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_exported() {
    let (receiver, endpoint) = Receiver::start().await;
    let tmp = TempDir::new("shep-otlp-off");
    let (server, data) = serve(
        &tmp,
        "",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let (_, lookup) = traced_lookup(&data);
    GatewayClient::new(connect(&server.url()).await)
        .call(lookup)
        .await
        .expect("the lookup");
    // Twenty batch delays, then the stop that would flush.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = server.interrupt().await;
    assert!(status.success(), "`shep serve` stopped with {status}");
    let requests = receiver.requests.lock().unwrap();
    assert!(requests.is_empty(), "exported: {requests:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_are_answered_while_the_collector_is_unreachable() {
    // A port nothing listens on.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let tmp = TempDir::new("shep-otlp-down");
    let (server, data) = serve(
        &tmp,
        &telemetry(&endpoint),
        &[("OTEL_BSP_SCHEDULE_DELAY", "50")],
    )
    .await;
    let mut client = GatewayClient::new(connect(&server.url()).await);
    for _ in 0..20 {
        let (_, lookup) = traced_lookup(&data);
        tokio::time::timeout(Duration::from_secs(2), client.call(lookup))
            .await
            .expect("the lookup waited on the collector")
            .unwrap_or_else(|status| panic!("lookup refused: {}", describe(&status)));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = server.log();
    let status = server.interrupt().await;
    assert!(
        status.success(),
        "`shep serve` stopped with {status}:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn a_bad_endpoint_is_refused_at_start_naming_the_key() {
    let tmp = TempDir::new("shep-otlp-bad");
    let path = tmp.path().join("gateway.toml");
    std::fs::write(&path, telemetry("127.0.0.1:4317")).unwrap();
    let run = run_shep(&[
        "serve",
        "--config",
        path.to_str().unwrap(),
        "--data-dir",
        tmp.path().join("data").to_str().unwrap(),
    ])
    .await;
    assert!(!run.status.success(), "{run:?}");
    assert!(
        run.stderr.contains("`telemetry.otlp_endpoint`"),
        "{}",
        run.stderr
    );
}
