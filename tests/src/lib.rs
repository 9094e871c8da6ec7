//! The shared harness of the shep-sim end-to-end tests.
//!
//! Every test starts its own gateway with [`TestGateway::start`] (or
//! [`TestGateway::builder`] for options): a real tonic server on a loopback
//! port picked by the OS, with a fresh data directory (test НУЦ, demo
//! identities, admin token) that is removed when the gateway is dropped. The
//! harness hands out typed gRPC clients, the demo participants, the test CA for
//! extra certificates, a hand-driven provider connection ([`Subscription`]),
//! and helpers for refusals ([`refusal`], [`reason`]), streams ([`next_within`],
//! [`next_item`]) and polling ([`eventually`]).

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shep_gateway::config::{GatewayConfig, RegistryConfig};
use shep_gateway::engine::Engine;
use shep_gateway::server::{DataDir, RunningGateway};
use shep_proto::admin::v1::admin_client::AdminClient;
use shep_proto::envelope::v1::{
    ApplicationStatus, Body, Channel, SignedEnvelope, StatusReport, Subject,
};
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use shep_proto::gateway::v1::{
    Application, GetStatusRequest, Receipt, StatusEvent, WatchRequest, watch_request,
};
use shep_proto::provider::v1::provider_client::ProviderClient;
use shep_proto::provider::v1::{
    Ack, Delivery, Hello, ReceiveStatus, ReportReceipt, ResendMessage, SubscribeRequest,
    SubscribeResponse, Welcome, subscribe_request, subscribe_response,
};
use shep_registries::nuc::{CertificateAuthority, IdentitySpec, Signer};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel as GrpcChannel, Endpoint};
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt;

pub use shep_gateway::client::{Participant, iin, new_message_id};

/// The demo applicant's IIN: Серикбаев Нурлан, registered in СКО (КАТО 59…).
pub const APPLICANT_IIN: &str = shep_gateway::server::DEMO_APPLICANT_IIN;
/// The guardianship certificate of the Esil district (СКО), routed by region 59.
pub const ESIL_SERVICE: &str = "guardianship-certificate-esil";
/// The provider system that serves [`ESIL_SERVICE`] for region 59.
pub const ESIL_PROVIDER: &str = "arm-rshep-sko-esil-edu";
/// The ГБД ФЛ lookup service.
pub const LOOKUP_SERVICE: &str = "GbdflInfoByIin_v1";
/// How long a test waits for something that should happen promptly. Generous,
/// because it only matters when a test is about to fail.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A directory under [`std::env::temp_dir`], removed (with its contents) on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, empty directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("creating `{}`: {error}", path.display()));
        Self { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Options of a test gateway; [`GatewayBuilder::start`] starts it.
#[derive(Debug, Clone, Default)]
pub struct GatewayBuilder {
    config: GatewayConfig,
    routes_toml: Option<String>,
}

impl GatewayBuilder {
    /// How long a delivery stays leased without an acknowledgement.
    pub fn lease_ms(mut self, lease_ms: u64) -> Self {
        self.config.delivery.lease_ms = lease_ms;
        self
    }

    /// Leases before a delivery stops.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.config.delivery.max_attempts = max_attempts;
        self
    }

    /// The default in-flight limit of a provider connection.
    pub fn max_in_flight(mut self, max_in_flight: u32) -> Self {
        self.config.delivery.max_in_flight = max_in_flight;
        self
    }

    /// Starts on this routing table: the text is written to `routes.toml` in
    /// the test's temp directory and configured as the gateway's routes file.
    pub fn routes_toml(mut self, text: &str) -> Self {
        self.routes_toml = Some(text.to_owned());
        self.config.routes = None;
        self
    }

    /// Starts on the routing table in `path`.
    pub fn routes_file(mut self, path: &Path) -> Self {
        self.routes_toml = None;
        self.config.routes = Some(path.to_owned());
        self
    }

    /// Reaches registry `registry` (e.g. `gbdfl`) over gRPC at `url`.
    pub fn registry_url(mut self, registry: &str, url: &str) -> Self {
        self.config.registries.insert(
            registry.to_owned(),
            RegistryConfig {
                url: Some(url.to_owned()),
            },
        );
        self
    }

    /// Any other change to the configuration.
    pub fn configure(mut self, change: impl FnOnce(&mut GatewayConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// Binds `127.0.0.1:0`, starts the gateway and connects a client channel.
    pub async fn start(self) -> TestGateway {
        let dir = TempDir::new("shep-tests");
        let mut config = self.config;
        config.data_dir = dir.path().join("data");
        let mut routes_path = config.routes.clone();
        if let Some(text) = &self.routes_toml {
            let path = dir.path().join("routes.toml");
            std::fs::write(&path, text).expect("writing the routes file");
            config.routes = Some(path.clone());
            routes_path = Some(path);
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let running = shep_gateway::server::start_on(listener, config)
            .await
            .expect("starting the gateway");
        let channel = connect(&running.url()).await;
        TestGateway {
            running,
            channel,
            routes_path,
            dir,
        }
    }
}

/// Connects a new gRPC channel (its own HTTP/2 connection) to `url`.
pub async fn connect(url: &str) -> GrpcChannel {
    Endpoint::from_shared(url.to_owned())
        .expect("a valid url")
        .connect_timeout(PATIENCE)
        .connect()
        .await
        .unwrap_or_else(|error| panic!("connecting to {url}: {error}"))
}

/// What [`TestGateway::submit_application`] sent and got back.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The body as signed.
    pub body: Body,
    /// The envelope as sent.
    pub envelope: SignedEnvelope,
    /// The gateway's receipt.
    pub receipt: Receipt,
}

/// A gateway running for one test, on a loopback port, with its own data
/// directory (removed on drop).
#[derive(Debug)]
pub struct TestGateway {
    /// The running gateway: its engine, admin token and data directory.
    pub running: RunningGateway,
    channel: GrpcChannel,
    routes_path: Option<PathBuf>,
    // Declared last, so it is removed after the gateway is dropped.
    dir: TempDir,
}

impl TestGateway {
    /// Starts a gateway with the default configuration and routing table.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// Options for a gateway.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::default()
    }

    /// The `http://127.0.0.1:<port>` URL.
    pub fn url(&self) -> String {
        self.running.url()
    }

    /// The engine behind the server.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.running.engine
    }

    /// The admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.running.admin_token
    }

    /// The data directory (test НУЦ, identities, admin token).
    pub fn data_dir(&self) -> &DataDir {
        &self.running.data_dir
    }

    /// The test's temp directory (the data directory lives in it).
    pub fn temp_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The routes file the gateway was started with, if any.
    pub fn routes_path(&self) -> Option<&Path> {
        self.routes_path.as_deref()
    }

    /// The shared client channel.
    pub fn channel(&self) -> GrpcChannel {
        self.channel.clone()
    }

    /// A `shep.gateway.v1.Gateway` client.
    pub fn gateway(&self) -> GatewayClient<GrpcChannel> {
        GatewayClient::new(self.channel())
    }

    /// A `shep.provider.v1.Provider` client.
    pub fn provider_client(&self) -> ProviderClient<GrpcChannel> {
        ProviderClient::new(self.channel())
    }

    /// A `shep.admin.v1.Admin` client (add the bearer token per request).
    pub fn admin(&self) -> AdminClient<GrpcChannel> {
        AdminClient::new(self.channel())
    }

    fn signer(&self, name: &str) -> Signer {
        let (key, cert) = self.data_dir().identity(name);
        Signer::from_files(&key, &cert)
            .unwrap_or_else(|error| panic!("loading identity `{name}`: {error}"))
    }

    /// The demo applicant: IIN [`APPLICANT_IIN`], sender `pep`, the portal channel.
    pub fn applicant(&self) -> Participant {
        Participant::new("pep", Channel::Portal, self.signer("applicant"))
    }

    /// The demo ЦОН operator: sender `is-con`, the service-centre channel.
    pub fn operator(&self) -> Participant {
        Participant::new("is-con", Channel::ServiceCentre, self.signer("operator"))
    }

    /// An employee of provider system `provider_id`, on the provider-desk channel.
    pub fn provider(&self, provider_id: &str) -> Participant {
        Participant::new(
            provider_id,
            Channel::ProviderDesk,
            self.signer(&format!("provider-{provider_id}")),
        )
    }

    /// The gateway's test НУЦ, to issue extra certificates.
    pub fn ca(&self) -> CertificateAuthority {
        CertificateAuthority::load(&self.data_dir().nuc()).expect("loading the test НУЦ")
    }

    /// A signer with a new certificate for `spec` from the test НУЦ.
    pub fn issue(&self, spec: &IdentitySpec) -> Signer {
        self.ca()
            .issue(spec)
            .and_then(|issued| issued.signer())
            .expect("issuing a certificate")
    }

    /// A participant signing with a new certificate for `spec`.
    pub fn participant(
        &self,
        sender_id: &str,
        channel: Channel,
        spec: &IdentitySpec,
    ) -> Participant {
        Participant::new(sender_id, channel, self.issue(spec))
    }

    /// The demo applicant submits an application for [`ESIL_SERVICE`]; panics
    /// unless it is accepted.
    pub async fn submit_application(&self) -> Submitted {
        let applicant = self.applicant();
        let body = applicant.application(
            ESIL_SERVICE,
            iin(APPLICANT_IIN),
            r#"{"child_iin":"061211600012","kind":"опека"}"#,
            Vec::new(),
        );
        let envelope = applicant.seal(&body).expect("signing");
        let receipt = self
            .gateway()
            .submit(envelope.clone())
            .await
            .unwrap_or_else(|status| panic!("submit refused: {}", describe(&status)))
            .into_inner();
        Submitted {
            body,
            envelope,
            receipt,
        }
    }

    /// `Gateway.GetStatus`; panics on a refusal.
    pub async fn status(&self, message_id: &str) -> Application {
        self.gateway()
            .get_status(GetStatusRequest {
                message_id: message_id.to_owned(),
            })
            .await
            .unwrap_or_else(|status| panic!("GetStatus refused: {}", describe(&status)))
            .into_inner()
    }

    /// `Gateway.Watch` of a subject from `after_sequence`.
    pub async fn watch_subject(
        &self,
        subject: Subject,
        after_sequence: u64,
    ) -> Streaming<StatusEvent> {
        self.watch(watch_request::Target::Subject(subject), after_sequence)
            .await
    }

    /// `Gateway.Watch` of one application from `after_sequence`.
    pub async fn watch_message(
        &self,
        message_id: &str,
        after_sequence: u64,
    ) -> Streaming<StatusEvent> {
        self.watch(
            watch_request::Target::MessageId(message_id.to_owned()),
            after_sequence,
        )
        .await
    }

    async fn watch(
        &self,
        target: watch_request::Target,
        after_sequence: u64,
    ) -> Streaming<StatusEvent> {
        self.gateway()
            .watch(WatchRequest {
                target: Some(target),
                after_sequence,
            })
            .await
            .unwrap_or_else(|status| panic!("Watch refused: {}", describe(&status)))
            .into_inner()
    }

    /// Opens a Subscribe connection for `provider_id` on the shared channel;
    /// panics unless it is welcomed.
    pub async fn subscribe(&self, provider_id: &str, max_in_flight: u32) -> Subscription {
        Subscription::open(self.channel(), hello(provider_id, max_in_flight))
            .await
            .unwrap_or_else(|status| panic!("Subscribe refused: {}", describe(&status)))
    }

    /// An employee of `provider_id` signs `report` about `application` and
    /// sends it with `Provider.Report`.
    pub async fn report(
        &self,
        provider_id: &str,
        application: &Body,
        report: StatusReport,
    ) -> Result<ReportReceipt, Status> {
        let envelope = self
            .provider(provider_id)
            .report(application, report)
            .expect("signing the report");
        self.provider_client()
            .report(envelope)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(self) {
        self.running.shutdown().await.expect("clean shutdown");
    }
}

/// A report of `status` with nothing else set; fill the rest with `..`.
pub fn status_report(status: ApplicationStatus) -> StatusReport {
    StatusReport {
        status: status as i32,
        ..StatusReport::default()
    }
}

/// A protobuf timestamp as a time.
pub fn to_time(timestamp: &prost_types::Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(timestamp.seconds).expect("a valid timestamp")
        + time::Duration::nanoseconds(i64::from(timestamp.nanos))
}

/// A time as a protobuf timestamp.
pub fn to_timestamp(time: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.unix_timestamp(),
        nanos: time.nanosecond() as i32,
    }
}

/// A `Hello` for `provider_id` with `max_in_flight`, for all its services.
pub fn hello(provider_id: &str, max_in_flight: u32) -> Hello {
    Hello {
        provider_id: provider_id.to_owned(),
        max_in_flight,
        service_ids: Vec::new(),
    }
}

/// An `Ack` of `message_id` with the given status and resend flag.
pub fn ack(
    provider_id: &str,
    message_id: &str,
    receive_status: ReceiveStatus,
    resend: ResendMessage,
    error_message: &str,
) -> Ack {
    Ack {
        message_id: message_id.to_owned(),
        receive_status: receive_status as i32,
        resend: resend as i32,
        error_message: error_message.to_owned(),
        provider_id: provider_id.to_owned(),
    }
}

/// What [`next_within`] found on a stream.
#[derive(Debug)]
pub enum Next<T> {
    /// A message.
    Item(T),
    /// The stream ended cleanly.
    Ended,
    /// The stream ended with an error status.
    Failed(Status),
    /// Nothing arrived in time.
    TimedOut,
}

/// The next message of `stream` within `within`.
pub async fn next_within<T>(stream: &mut Streaming<T>, within: Duration) -> Next<T> {
    match tokio::time::timeout(within, stream.message()).await {
        Err(_) => Next::TimedOut,
        Ok(Ok(Some(item))) => Next::Item(item),
        Ok(Ok(None)) => Next::Ended,
        Ok(Err(status)) => Next::Failed(status),
    }
}

/// The next message of `stream`; panics if it ends, fails, or nothing arrives
/// within [`PATIENCE`].
pub async fn next_item<T: Debug>(stream: &mut Streaming<T>) -> T {
    match next_within(stream, PATIENCE).await {
        Next::Item(item) => item,
        Next::Failed(status) => panic!("stream failed: {}", describe(&status)),
        other => panic!("expected a message, got {other:?}"),
    }
}

/// One provider connection on `Provider.Subscribe`, driven by hand: the test
/// decides what to send and when to acknowledge.
#[derive(Debug)]
pub struct Subscription {
    /// The provider system this connection speaks for.
    pub provider_id: String,
    /// The gateway's Welcome.
    pub welcome: Welcome,
    uplink: mpsc::Sender<SubscribeRequest>,
    inbound: Streaming<SubscribeResponse>,
}

impl Subscription {
    /// Opens a connection with `hello` and waits for the Welcome. A refusal is
    /// returned as the status the stream ended with.
    pub async fn open(channel: GrpcChannel, hello: Hello) -> Result<Self, Status> {
        let provider_id = hello.provider_id.clone();
        let (uplink, mut inbound) = open_raw(
            channel,
            SubscribeRequest {
                kind: Some(subscribe_request::Kind::Hello(hello)),
            },
        )
        .await?;
        match next_within(&mut inbound, PATIENCE).await {
            Next::Item(SubscribeResponse {
                kind: Some(subscribe_response::Kind::Welcome(welcome)),
            }) => Ok(Self {
                provider_id,
                welcome,
                uplink,
                inbound,
            }),
            Next::Failed(status) => Err(status),
            other => panic!("expected a Welcome first, got {other:?}"),
        }
    }

    /// The next message within `within`.
    pub async fn next_within(&mut self, within: Duration) -> Next<SubscribeResponse> {
        next_within(&mut self.inbound, within).await
    }

    /// The next delivery; panics if anything else comes or nothing within [`PATIENCE`].
    pub async fn next_delivery(&mut self) -> Delivery {
        match self.next_within(PATIENCE).await {
            Next::Item(SubscribeResponse {
                kind: Some(subscribe_response::Kind::Delivery(delivery)),
            }) => delivery,
            Next::Failed(status) => panic!("the Subscribe stream failed: {}", describe(&status)),
            other => panic!("expected a delivery, got {other:?}"),
        }
    }

    /// Asserts that nothing arrives within `window`.
    pub async fn expect_quiet(&mut self, window: Duration) {
        match self.next_within(window).await {
            Next::TimedOut => {}
            other => panic!("expected no message within {window:?}, got {other:?}"),
        }
    }

    /// Sends any request on the stream.
    pub async fn send(&self, request: SubscribeRequest) {
        self.uplink
            .send(request)
            .await
            .expect("the Subscribe request stream is open");
    }

    /// Sends an acknowledgement on the stream.
    pub async fn send_ack(&self, ack: Ack) {
        self.send(SubscribeRequest {
            kind: Some(subscribe_request::Kind::Ack(ack)),
        })
        .await;
    }

    /// Acknowledges `message_id` as accepted.
    pub async fn accept(&self, message_id: &str) {
        self.send_ack(ack(
            &self.provider_id,
            message_id,
            ReceiveStatus::MessageAccepted,
            ResendMessage::Unspecified,
            "",
        ))
        .await;
    }

    /// Acknowledges `message_id` as not accepted.
    pub async fn reject(&self, message_id: &str, resend: ResendMessage, error_message: &str) {
        self.send_ack(ack(
            &self.provider_id,
            message_id,
            ReceiveStatus::MessageNotAccepted,
            resend,
            error_message,
        ))
        .await;
    }
}

/// Starts `Provider.Subscribe` with `first` as the first request and returns
/// the request sender and the response stream, without reading anything.
pub async fn open_raw(
    channel: GrpcChannel,
    first: SubscribeRequest,
) -> Result<(mpsc::Sender<SubscribeRequest>, Streaming<SubscribeResponse>), Status> {
    let (uplink, outbound) = mpsc::channel(64);
    uplink
        .send(first)
        .await
        .expect("the request stream is open");
    let inbound = ProviderClient::new(channel)
        .subscribe(ReceiverStream::new(outbound))
        .await?
        .into_inner();
    Ok((uplink, inbound))
}

/// The `google.rpc.ErrorInfo.reason` of a refusal (the `shep.envelope.v1.Reason`
/// name), or an empty string when the status carries none.
pub fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// The `google.rpc.ErrorInfo.metadata[key]` of a refusal, if present.
pub fn error_metadata(status: &Status, key: &str) -> Option<String> {
    status
        .get_details_error_info()
        .and_then(|info| info.metadata.get(key).cloned())
}

/// A status as a person reads it: code, reason and message.
pub fn describe(status: &Status) -> String {
    format!(
        "{:?} / {} — {}",
        status.code(),
        reason(status),
        status.message()
    )
}

/// Asserts that `result` is a refusal with `code` and `reason_name`, and
/// returns the status for further checks.
#[track_caller]
pub fn refusal<R: Debug>(result: Result<R, Status>, code: Code, reason_name: &str) -> Status {
    match result {
        Ok(response) => panic!("expected a refusal {code:?} / {reason_name}, got {response:?}"),
        Err(status) => {
            assert_eq!(
                (status.code(), reason(&status).as_str()),
                (code, reason_name),
                "unexpected refusal: {}",
                describe(&status)
            );
            let info = status
                .get_details_error_info()
                .expect("refusals carry ErrorInfo");
            assert_eq!(info.domain, "shep.kz", "ErrorInfo domain");
            status
        }
    }
}

/// Polls `check` until it returns `Ok`, at most for `timeout`, and returns
/// the value; panics with the last error otherwise. Use it instead of sleeping
/// for something to become ready.
pub async fn eventually<T, E: Debug>(
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(remaining, check()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(error)) => last = Some(error),
            Err(_) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("condition not met within {timeout:?}; last error: {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
