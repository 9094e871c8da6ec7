//! The shared harness of the shep-sim end-to-end tests.
//!
//! Every test starts its own gateway with [`TestGateway::start`] (or
//! [`TestGateway::builder`] for options): a real tonic server on a loopback
//! port picked by the OS, with a fresh data directory (test НУЦ, demo
//! identities, admin token) that is removed when the gateway is dropped. The
//! harness hands out typed gRPC clients, the demo participants, the test CA for
//! extra certificates, a hand-driven provider connection ([`Subscription`]),
//! and helpers for refusals ([`refusal`], [`reason`]), streams ([`next_within`],
//! [`next_item`]) and polling ([`eventually`]). The `shep` binary runs as a
//! process with [`run_shep`] (a command that exits) or [`ShepServe`] (a
//! gateway process to kill or interrupt, on a port from [`free_port`]), and
//! [`http_get`] and [`http_post_json`] speak plain HTTP/1.1 to the endpoints
//! served beside gRPC (the НУЦ's CRL and status, metrics, the Admin API as
//! JSON). The Python tests run [`python()`]: `python3` with pinned packages
//! the harness installs under the target directory on first use.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prost::Message as _;
use shep_gateway::config::{GatewayConfig, RegistryConfig};
use shep_gateway::engine::Engine;
use shep_gateway::server::{DataDir, RunningGateway};
use shep_nuc::ca::{CertificateAuthority, IdentitySpec, Signer};
use shep_proto::admin::v1::admin_client::AdminClient;
use shep_proto::admin::v1::{ExchangeFilter, ListExchangesRequest};
use shep_proto::envelope::v1::{
    ApplicationStatus, Body, Channel, SignedEnvelope, StatusReport, Subject,
};
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use shep_proto::gateway::v1::{
    Application, GetStatusRequest, Receipt, StatusEvent, WatchRequest, watch_request,
};
use shep_proto::nuc::v1::nuc_client::NucClient;
use shep_proto::provider::v1::provider_client::ProviderClient;
use shep_proto::provider::v1::{
    Ack, Delivery, Hello, ReceiveStatus, ReportReceipt, ResendMessage, SubscribeRequest,
    SubscribeResponse, Welcome, subscribe_request, subscribe_response,
};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel as GrpcChannel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt;

pub mod python;

pub use python::{Python, python};
pub use shep::client::{Participant, iin, new_message_id};

/// A table that names a sender no system defines.
pub const UNKNOWN_SENDER_TABLE: &str = r#"
[[system]]
id = "pep"
name_ru = "ПЭП"
role = "portal"

[[system]]
id = "arm-rshep-sko-esil-edu"
name_ru = "АРМ РШЭП"
role = "provider"
operators = ["800417400129"]
bin = "151240012341"

[[service]]
id = "residence-certificate-esil"
name_ru = "Справка о месте жительства (тест)"
kind = "application"
senders = ["pep", "nobody"]
channels = ["portal"]
providers = { default = "arm-rshep-sko-esil-edu" }
deadline = "3 working-days"
"#;

/// The demo applicant's IIN: Серикбаев Нурлан, registered in Есильский район
/// СКО (КАТО 5942…).
pub const APPLICANT_IIN: &str = shep_gateway::server::DEMO_APPLICANT_IIN;
/// The guardianship certificate of the Esil district (СКО), routed by the
/// district's prefix 5942.
pub const ESIL_SERVICE: &str = "guardianship-certificate-esil";
/// The provider system that serves [`ESIL_SERVICE`] for Есильский район.
pub const ESIL_PROVIDER: &str = "arm-rshep-sko-esil-edu";
/// The employee of [`ESIL_PROVIDER`] in the default routing table (its first
/// operator): Касенова Гульнара, whom its demo identity is issued for.
pub const ESIL_EMPLOYEE_IIN: &str = "800417400129";
/// The BIN of [`ESIL_PROVIDER`]: ГУ «Отдел образования Есильского района».
pub const ESIL_PROVIDER_BIN: &str = "151240012341";
/// Омарова Сауле, registered in Тайынша (КАТО 5960…): an applicant the
/// Тайынша social programmes department serves.
pub const TAYYNSHA_APPLICANT_IIN: &str = "900621400516";
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
///
/// Participant authentication is off unless asked for
/// ([`GatewayBuilder::authenticated`]): the harness's one channel then acts
/// as every system, as most tests need; tests/tests/authentication.rs runs
/// the default (authenticated) configuration.
#[derive(Debug, Clone)]
pub struct GatewayBuilder {
    config: GatewayConfig,
    routes_toml: Option<String>,
    data_dir: Option<PathBuf>,
    client_tls: Option<ClientTlsConfig>,
}

impl Default for GatewayBuilder {
    fn default() -> Self {
        let mut config = GatewayConfig::default();
        config.auth.participants = shep_gateway::config::ParticipantAuth::Off;
        Self {
            config,
            routes_toml: None,
            data_dir: None,
            client_tls: None,
        }
    }
}

impl GatewayBuilder {
    /// The gateway's default: participants authenticate (mTLS with the
    /// systems' transport certificates, or passwords) on a TLS listener. The
    /// harness's own channel then trusts the test НУЦ and presents no
    /// certificate (it proves nobody): use [`TestGateway::channel_as`].
    pub fn authenticated(mut self) -> Self {
        self.config.auth.participants = shep_gateway::config::ParticipantAuth::Required;
        self
    }

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

    /// How long the gateway reuses a certificate's revocation status, in
    /// milliseconds (`checks.revocation_cache_ms`); 0: a revocation takes
    /// effect at once.
    pub fn revocation_cache_ms(mut self, ms: u64) -> Self {
        self.config.checks.revocation_cache_ms = ms;
        self
    }

    /// Keeps the data directory (test НУЦ, identities, admin token) in `path`
    /// instead of a fresh one, so a second gateway can start on what a first
    /// one left. The caller owns `path`: it is not removed on drop.
    pub fn data_dir(mut self, path: &Path) -> Self {
        self.data_dir = Some(path.to_owned());
        self
    }

    /// How the harness's own channel connects to a gateway whose listener
    /// speaks TLS (`tls.cert` in the configuration).
    pub fn client_tls(mut self, tls: ClientTlsConfig) -> Self {
        self.client_tls = Some(tls);
        self
    }

    /// Any other change to the configuration.
    pub fn configure(mut self, change: impl FnOnce(&mut GatewayConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// Binds `127.0.0.1:0`, starts the gateway and connects a client channel.
    pub async fn start(self) -> TestGateway {
        self.try_start().await.expect("starting the gateway")
    }

    /// Like [`GatewayBuilder::start`], but returns why the gateway did not
    /// start (a broken journal, a bad configuration) instead of panicking.
    pub async fn try_start(self) -> anyhow::Result<TestGateway> {
        let dir = TempDir::new("shep-tests");
        let mut config = self.config;
        config.data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
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
        let running = shep_gateway::server::start_on(listener, config).await?;
        let client_tls = match self.client_tls {
            Some(tls) => Some(tls),
            // The listener's certificate comes from the test НУЦ.
            None if running.tls => Some(trusting(&running.data_dir)),
            None => None,
        };
        let channel = match client_tls {
            Some(tls) => connect_tls(&running.url(), tls)
                .await
                .unwrap_or_else(|error| panic!("connecting over TLS: {error:?}")),
            None => connect(&running.url()).await,
        };
        Ok(TestGateway {
            running,
            channel,
            routes_path,
            dir,
        })
    }
}

/// TLS to a gateway whose listener certificate the test НУЦ in `dir` issued.
pub fn trusting(dir: &DataDir) -> ClientTlsConfig {
    let root = std::fs::read(dir.root_certificate()).expect("the test НУЦ's root certificate");
    ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(root))
}

/// [`trusting`], presenting the key and certificate (with its chain) in
/// `key` and `cert`.
pub fn presenting(dir: &DataDir, key: &Path, cert: &Path) -> ClientTlsConfig {
    let read = |path: &Path| {
        std::fs::read(path).unwrap_or_else(|error| panic!("reading `{}`: {error}", path.display()))
    };
    trusting(dir).identity(tonic::transport::Identity::from_pem(read(cert), read(key)))
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

/// Connects a new gRPC channel over TLS to `url` (`https://…`); the error
/// when the handshake fails.
pub async fn connect_tls(
    url: &str,
    tls: ClientTlsConfig,
) -> Result<GrpcChannel, tonic::transport::Error> {
    Endpoint::from_shared(url.to_owned())?
        .tls_config(tls)?
        .connect_timeout(PATIENCE)
        .connect()
        .await
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

    /// A new connection presenting participant system `id`'s transport
    /// certificate (issued into the data directory at start).
    pub async fn channel_as(&self, id: &str) -> GrpcChannel {
        let (key, cert) = self.data_dir().system_identity(id);
        connect_tls(&self.url(), presenting(self.data_dir(), &key, &cert))
            .await
            .unwrap_or_else(|error| panic!("connecting as `{id}`: {error:?}"))
    }

    /// A new connection presenting demo identity `name`'s certificate (e.g.
    /// `applicant-auth`, the applicant's authentication certificate).
    pub async fn channel_as_identity(&self, name: &str) -> GrpcChannel {
        let (key, cert) = self.data_dir().identity(name);
        connect_tls(&self.url(), presenting(self.data_dir(), &key, &cert))
            .await
            .unwrap_or_else(|error| panic!("connecting as `{name}`: {error:?}"))
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

    /// A `shep.nuc.v1.Nuc` client (Issue and Revoke need [`TestGateway::authorized`]).
    pub fn nuc(&self) -> NucClient<GrpcChannel> {
        NucClient::new(self.channel())
    }

    /// `message` as a request carrying the admin bearer token.
    pub fn authorized<T>(&self, message: T) -> tonic::Request<T> {
        with_bearer(message, self.admin_token())
    }

    /// The loopback address the gateway listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.addr
    }

    /// The signer of demo identity `name` (`applicant`, `operator`, `provider-<id>`).
    pub fn signer_of(&self, name: &str) -> Signer {
        self.signer(name)
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

    /// A signer with a new certificate for `spec` from the running gateway's
    /// own НУЦ, so its register knows the serial and a revocation (through
    /// `Nuc.Revoke`, the CLI, or [`CertificateAuthority::revoke`] on
    /// `running.ca`) reaches the gateway's checks. [`TestGateway::issue`]
    /// loads a second copy of the CA from disk, whose register the running
    /// gateway does not see: its certificates are valid but unknown to the
    /// status check.
    pub fn issue_registered(&self, spec: &IdentitySpec) -> Signer {
        self.running
            .ca
            .issue(spec)
            .and_then(|issued| issued.signer())
            .expect("issuing a certificate")
    }

    /// A new certificate for `spec` from the running gateway's own НУЦ,
    /// written as `<name>.key.pem` (PKCS#8) and `<name>.cert.pem` in the
    /// test's temp directory, for clients in other languages.
    pub fn issue_files(&self, spec: &IdentitySpec, name: &str) -> (PathBuf, PathBuf) {
        let dir = self.temp_dir().join("issued");
        std::fs::create_dir_all(&dir).expect("creating the issued directory");
        self.running
            .ca
            .issue(spec)
            .and_then(|issued| issued.write(&dir, name))
            .expect("issuing a certificate");
        (
            dir.join(format!("{name}.key.pem")),
            dir.join(format!("{name}.cert.pem")),
        )
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

    /// The deliveries and acknowledgements on `provider_id`'s Subscribe
    /// streams, in the order the exchange journal numbered them. Positive
    /// evidence of what the gateway sent, where waiting for silence would
    /// let a late duplicate pass.
    pub async fn stream_events(&self, provider_id: &str) -> Vec<StreamEvent> {
        self.journalled_stream(ExchangeFilter {
            subject: provider_id.to_owned(),
            ..ExchangeFilter::default()
        })
        .await
    }

    /// The attempt numbers of every delivery of `message_id` on Subscribe
    /// streams so far, in the order they were sent.
    pub async fn delivered_attempts(&self, message_id: &str) -> Vec<u32> {
        self.journalled_stream(ExchangeFilter {
            message_id: message_id.to_owned(),
            ..ExchangeFilter::default()
        })
        .await
        .into_iter()
        .filter_map(|event| match event {
            StreamEvent::Delivered { attempt, .. } => Some(attempt),
            StreamEvent::Acknowledged { .. } => None,
        })
        .collect()
    }

    async fn journalled_stream(&self, filter: ExchangeFilter) -> Vec<StreamEvent> {
        let listed = self
            .admin()
            .list_exchanges(self.authorized(ListExchangesRequest {
                filter: Some(ExchangeFilter {
                    rpc: "shep.provider.v1.Provider/Subscribe".to_owned(),
                    hop: "delivery".to_owned(),
                    ..filter
                }),
                limit: 10_000,
            }))
            .await
            .unwrap_or_else(|status| panic!("ListExchanges refused: {}", describe(&status)))
            .into_inner();
        let mut exchanges = listed.exchanges;
        exchanges.sort_by_key(|exchange| exchange.sequence);
        exchanges
            .into_iter()
            .map(|exchange| {
                if let Some(response) = &exchange.response {
                    let sent = SubscribeResponse::decode(response.value.as_slice())
                        .expect("a journalled SubscribeResponse");
                    match sent.kind {
                        Some(subscribe_response::Kind::Delivery(delivery)) => {
                            StreamEvent::Delivered {
                                message_id: delivery.message_id,
                                attempt: delivery.attempt,
                            }
                        }
                        other => panic!("journalled on a Subscribe stream: {other:?}"),
                    }
                } else {
                    StreamEvent::Acknowledged {
                        message_id: exchange.message_id,
                    }
                }
            })
            .collect()
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

/// `message` as a request with `authorization: Bearer <token>`.
pub fn with_bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .expect("a token is a valid header value"),
    );
    request
}

/// The workspace root (where `Cargo.toml` and `target/` live).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_owned()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace
/// root) when set, else `target/` in the workspace root.
pub fn target_dir() -> PathBuf {
    let root = workspace_root();
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Builds the `shep` binary once per test binary and returns its path
/// (`target/debug/shep`, or under `CARGO_TARGET_DIR`).
pub fn shep_binary() -> &'static Path {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        let root = workspace_root();
        let mut build = std::process::Command::new(env!("CARGO"));
        build
            .args(["build", "-q", "-p", "shep", "--bin", "shep"])
            .current_dir(&root);
        // Cargo sets these for the test binary; passed on, they look like a
        // changed environment to build scripts (ring tracks
        // CARGO_MANIFEST_DIR) and make every run rebuild half the graph.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_MANIFEST_")
                || matches!(
                    key.as_ref(),
                    "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "CARGO_RUSTC_CURRENT_DIR"
                        | "CARGO_BIN_NAME"
                )
            {
                build.env_remove(key.as_ref());
            }
        }
        let status = build.status().expect("running cargo build");
        assert!(status.success(), "cargo build of `shep` failed: {status}");
        let binary = target_dir()
            .join("debug")
            .join(format!("shep{}", std::env::consts::EXE_SUFFIX));
        assert!(binary.exists(), "no binary at {}", binary.display());
        binary
    })
}

/// What a `shep` process printed and how it exited.
#[derive(Debug)]
pub struct ShepRun {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ShepRun {
    /// Panics unless it exited successfully; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert!(
            self.status.success(),
            "shep failed ({}):\n{}\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }
}

/// Runs `shep` with `args` (off the async workers, so a gateway on the same
/// runtime keeps serving it); killed if it has not exited within [`PATIENCE`].
pub async fn run_shep(args: &[&str]) -> ShepRun {
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let shown = args.join(" ");
    tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(shep_binary())
            .args(&args)
            .env_remove("SHEP_ADMIN_TOKEN")
            .env("SHEP_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starting shep");
        let reader = |mut pipe: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = reader(Box::new(child.stdout.take().expect("piped stdout")));
        let stderr = reader(Box::new(child.stderr.take().expect("piped stderr")));
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for shep") {
                break status;
            }
            if started.elapsed() > PATIENCE {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`shep {shown}` did not exit within {PATIENCE:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        ShepRun {
            status,
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        }
    })
    .await
    .expect("the shep runner")
}

/// A loopback port that was free a moment ago: `127.0.0.1:0` bound and
/// released, for a process that must listen on a port chosen in advance.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding a loopback port")
        .port()
}

/// The demo applicant signing with the identity `shep serve` wrote in `data`.
pub fn applicant_of(data: &Path) -> Participant {
    let (key, cert) = DataDir(data.to_owned()).identity("applicant");
    Participant::new(
        "pep",
        Channel::Portal,
        Signer::from_files(&key, &cert).expect("the applicant identity"),
    )
}

/// `shep serve` running as a child process of the test, on a given address
/// and data directory, with its output appended to a log file. Killed (if
/// still running) when dropped.
#[derive(Debug)]
pub struct ShepServe {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    log: PathBuf,
}

impl ShepServe {
    /// Starts `shep serve --listen <addr> --data-dir <data_dir>` and waits,
    /// at most [`PATIENCE`], until its gRPC health check reports the Gateway
    /// service SERVING. Panics with the log if it exits or does not serve.
    pub async fn start(addr: std::net::SocketAddr, data_dir: &Path, log: &Path) -> Self {
        Self::start_with_env(addr, data_dir, log, &[("SHEP_LOG", "warn")]).await
    }

    /// [`ShepServe::start`] with extra environment variables (e.g. `SHEP_LOG`).
    pub async fn start_with_env(
        addr: std::net::SocketAddr,
        data_dir: &Path,
        log: &Path,
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_with(addr, data_dir, log, env, &[]).await
    }

    /// [`ShepServe::start`] with extra environment variables and arguments
    /// to `shep serve` (e.g. `--nats URL`).
    pub async fn start_with(
        addr: std::net::SocketAddr,
        data_dir: &Path,
        log: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let binary = tokio::task::spawn_blocking(shep_binary)
            .await
            .expect("building shep");
        let output = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|error| panic!("opening `{}`: {error}", log.display()));
        let child = std::process::Command::new(binary)
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            // Plaintext, as `url` says: these tests are about other things
            // (crashes, clusters, signals); authentication has its own.
            .arg("--insecure")
            .args(args)
            .env_remove("SHEP_ADMIN_TOKEN")
            .env("SHEP_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(output.try_clone().expect("duplicating the log file"))
            .stderr(output)
            .spawn()
            .expect("starting `shep serve`");
        let mut server = Self {
            child,
            addr,
            log: log.to_owned(),
        };
        server.wait_until_serving().await;
        server
    }

    async fn wait_until_serving(&mut self) {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;
        let started = std::time::Instant::now();
        let mut last = String::from("not tried");
        while started.elapsed() < PATIENCE {
            if let Some(status) = self.child.try_wait().expect("polling `shep serve`") {
                panic!(
                    "`shep serve` exited ({status}) before serving:\n{}",
                    self.log()
                );
            }
            let endpoint = Endpoint::from_shared(self.url())
                .expect("a valid url")
                .connect_timeout(Duration::from_millis(500))
                .timeout(Duration::from_secs(1));
            match endpoint.connect().await {
                Err(error) => last = format!("connect: {error}"),
                Ok(channel) => match HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: "shep.gateway.v1.Gateway".to_owned(),
                    })
                    .await
                {
                    Ok(response) if response.get_ref().status() == ServingStatus::Serving => {
                        return;
                    }
                    Ok(response) => last = format!("health: {:?}", response.get_ref().status()),
                    Err(status) => last = format!("health: {}", describe(&status)),
                },
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "`shep serve` on {} did not serve within {PATIENCE:?} ({last}):\n{}",
            self.addr,
            self.log()
        );
    }

    /// The `http://127.0.0.1:<port>` URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process (and earlier ones writing to the same log) printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process with SIGKILL, as a crash: no shutdown code runs.
    /// Returns once it is gone.
    pub fn kill(&mut self) {
        self.child.kill().expect("killing `shep serve`");
        self.child.wait().expect("reaping `shep serve`");
    }

    /// Sends SIGINT (Ctrl-C), the graceful stop, and waits at most
    /// [`PATIENCE`] for the process to exit; returns how it exited.
    pub async fn interrupt(mut self) -> std::process::ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()
            .expect("running kill -INT");
        assert!(sent.success(), "kill -INT {} failed: {sent}", self.pid());
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("polling `shep serve`") {
                return status;
            }
            if started.elapsed() > PATIENCE {
                panic!(
                    "`shep serve` did not stop within {PATIENCE:?} of SIGINT:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ShepServe {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A plain HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header `name` (lower case), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }
}

/// `GET path` over a fresh TCP connection to `addr`, written by hand as
/// HTTP/1.1 with `Connection: close`; reads the whole response (length-delimited
/// or chunked) within [`PATIENCE`].
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> HttpResponse {
    http_request(addr, "GET", path, &[], b"").await
}

/// `POST path` with a JSON `body` and, when given, `authorization: Bearer
/// <token>`, like `curl -H "authorization: Bearer …" -d '…'` (but with
/// `content-type: application/json`).
pub async fn http_post_json(
    addr: std::net::SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> HttpResponse {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer.as_str()));
    }
    http_request(addr, "POST", path, &headers, body.as_bytes()).await
}

/// `method path` with `headers` and `body` over a fresh TCP connection to
/// `addr`, written by hand as HTTP/1.1 with `Connection: close`; reads the
/// whole response (length-delimited or chunked) within [`PATIENCE`].
pub async fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if method != "GET" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(body);
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(&request).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        std::io::Result::Ok(raw)
    };
    let raw = tokio::time::timeout(PATIENCE, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no complete response within {PATIENCE:?}"))
        .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no end of headers in {raw:?}"));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: bad status line `{status_line}`"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(key, value)| key == "transfer-encoding" && value.contains("chunked"));
    if chunked {
        body = dechunk(&body).unwrap_or_else(|| panic!("{method} {path}: bad chunked body"));
    } else if let Some((_, length)) = headers.iter().find(|(key, _)| key == "content-length") {
        let length: usize = length.parse().expect("a numeric content-length");
        assert_eq!(
            body.len(),
            length,
            "{method} {path}: body shorter than announced"
        );
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = rest.windows(2).position(|window| window == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
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

/// One message on a provider's Subscribe stream, as the exchange journal
/// recorded it ([`TestGateway::stream_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The gateway delivered `message_id`, for the `attempt`-th time.
    Delivered { message_id: String, attempt: u32 },
    /// The provider acknowledged `message_id`.
    Acknowledged { message_id: String },
}

impl StreamEvent {
    /// `Delivered` of `message_id`, for `attempt`.
    pub fn delivered(message_id: &str, attempt: u32) -> Self {
        Self::Delivered {
            message_id: message_id.to_owned(),
            attempt,
        }
    }

    /// `Acknowledged` of `message_id`.
    pub fn acknowledged(message_id: &str) -> Self {
        Self::Acknowledged {
            message_id: message_id.to_owned(),
        }
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
    // Deliveries carry scans inline: as large as the gateway allows.
    let inbound = ProviderClient::new(channel)
        .max_decoding_message_size(usize::MAX)
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

/// Polls GetStatus until the application's delivery state is `state` and its
/// latest status is published as an event (events follow their commit).
pub async fn delivery_state_becomes(
    gw: &TestGateway,
    message_id: &str,
    state: shep_proto::gateway::v1::MessageState,
) -> shep_proto::gateway::v1::Application {
    eventually(PATIENCE, async || {
        let application = gw.status(message_id).await;
        // Events appear once journaled, a moment after the state changes.
        let published = application.events.last().map(|event| event.status);
        if application.delivery_state() == state && published == Some(application.status) {
            Ok(application)
        } else {
            Err((application.delivery_state(), application.status()))
        }
    })
    .await
}
