//! Starting a gateway: the data directory (test НУЦ, demo identities, admin
//! token), the engine, and the gRPC server with health and reflection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use shep_adapters::{InProcess, RegistryAdapter, Remote};
use shep_nuc::ca::{CertificateAuthority, IdentitySpec, KeyAlgorithm, Purpose, certificates};
use shep_nuc::revocation::RevocationCheck;
use shep_nuc::service::{NucGrpcAdapter, http_routes};
use shep_nuc::status::{InProcessNuc, RemoteNuc};
use shep_nuc::verify::SignatureVerifier;
use shep_proto::admin::v1::admin_server::AdminServer;
use shep_proto::gateway::v1::gateway_server::GatewayServer;
use shep_proto::nuc::v1::nuc_server::NucServer;
use shep_proto::provider::v1::provider_server::ProviderServer;
use shep_registries::{RegistryData, RegistryKind};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::admin_auth::AdminAuth;
use crate::config::{GatewayConfig, JournalMode, ParticipantAuth};
use crate::engine::Engine;
use crate::grpc::{AdminGrpcAdapter, Authenticate, GatewayGrpcAdapter, ProviderGrpcAdapter};
use crate::health::{Health, NUC_ID};
use crate::pipeline::Limits;
use crate::registry::RegistriesHandle;
use crate::routes::{DEFAULT_ROUTES, Role, RoutingTable};
use crate::storage;

mod listen;
mod tls;

/// The demo applicant's IIN: a built-in ГБД ФЛ person of Есильский район
/// СКО (КАТО 5942…), whom the demo service guardianship-certificate-esil
/// serves.
pub const DEMO_APPLICANT_IIN: &str = "850315301235";
/// The demo service-centre operator's IIN.
pub const DEMO_OPERATOR_IIN: &str = "920704404563";

/// Holders' names (`CN`) of the demo employees' certificates, by IIN: the
/// built-in ГБД ФЛ persons the default routing table names as operators.
const DEMO_EMPLOYEE_NAMES: &[(&str, &str)] = &[
    ("800417400129", "КАСЕНОВА ГУЛЬНАРА"),
    ("770905300455", "МУСИН ЕРЛАН"),
    ("861122400784", "УТЕБАЕВА ЖАНАР"),
    ("731203356787", "БЕКМУХАНОВ АРМАН"),
    ("690214300322", "ДОСМАГАМБЕТОВ АСХАТ"),
];

/// The employee a provider system's demo identity (`provider-<id>`) is
/// issued for: the system's first operator, with its BIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoEmployee {
    /// The employee's IIN (`SERIALNUMBER=IIN…`).
    pub iin: String,
    /// The provider organisation's BIN (`OU=BIN…`), when the system has one.
    pub bin: Option<String>,
    /// The holder's name (`CN`).
    pub name: String,
}

impl DemoEmployee {
    /// The certificate of the employee of provider system `provider`.
    pub fn identity_spec(&self, provider: &str) -> IdentitySpec {
        IdentitySpec {
            bin: self.bin.clone(),
            organization: Some(provider.to_owned()),
            ..IdentitySpec::individual(&self.iin, &self.name)
        }
    }
}

/// The demo employee of system `provider` in `routes`: its first operator
/// and its BIN; `None` for a system with no operators.
pub fn demo_employee(routes: &RoutingTable, provider: &str) -> Option<DemoEmployee> {
    let system = routes.system(provider)?;
    let iin = system.operators.first()?;
    let name = DEMO_EMPLOYEE_NAMES
        .iter()
        .find(|(known, _)| known == iin)
        .map_or_else(
            || format!("СОТРУДНИК {provider}"),
            |(_, name)| (*name).to_owned(),
        );
    Some(DemoEmployee {
        iin: iin.clone(),
        bin: system.bin.clone(),
        name,
    })
}

/// Where things live in the data directory.
#[derive(Debug, Clone)]
pub struct DataDir(pub PathBuf);

impl DataDir {
    /// The test НУЦ.
    pub fn nuc(&self) -> PathBuf {
        self.0.join("nuc")
    }

    /// Demo keys and certificates.
    pub fn identities(&self) -> PathBuf {
        self.0.join("identities")
    }

    /// The key and certificate files of demo identity `name`.
    pub fn identity(&self, name: &str) -> (PathBuf, PathBuf) {
        let dir = self.identities();
        (
            dir.join(format!("{name}.key.pem")),
            dir.join(format!("{name}.cert.pem")),
        )
    }

    /// The key and certificate files of participant system `id`'s transport
    /// certificate (TLS client authentication).
    pub fn system_identity(&self, id: &str) -> (PathBuf, PathBuf) {
        let dir = self.0.join("systems");
        (
            dir.join(format!("{id}.key.pem")),
            dir.join(format!("{id}.cert.pem")),
        )
    }

    /// The test НУЦ's root certificate: what clients trust the listener's
    /// certificate by.
    pub fn root_certificate(&self) -> PathBuf {
        self.nuc().join("root.cert.pem")
    }

    /// The listener's own key and certificate, issued by the test НУЦ when
    /// participants authenticate and `tls.cert` is not set.
    pub fn listener_identity(&self) -> (PathBuf, PathBuf) {
        let dir = self.0.join("tls");
        (dir.join("gateway.key.pem"), dir.join("gateway.cert.pem"))
    }

    /// The journal.
    pub fn journal(&self) -> PathBuf {
        self.0.join("journal.redb")
    }

    /// The generated admin token.
    pub fn admin_token(&self) -> PathBuf {
        self.0.join("admin-token")
    }
}

/// Creates the test НУЦ and one identity per participant when missing:
/// `applicant` (and `applicant-auth`, their authentication certificate),
/// `operator`, `provider-<id>` for every provider system, and a transport
/// certificate per system of the routing table (`systems/<id>`).
/// `public_url` goes into the certificates' CRL and status URLs.
pub fn prepare_data_dir(
    dir: &DataDir,
    routes: &RoutingTable,
    public_url: &str,
) -> anyhow::Result<CertificateAuthority> {
    let ca = CertificateAuthority::load_or_generate(&dir.nuc())
        .with_context(|| format!("preparing the test НУЦ in `{}`", dir.nuc().display()))?
        .with_public_url(public_url);
    let identities = dir.identities();
    std::fs::create_dir_all(&identities)
        .with_context(|| format!("creating `{}`", identities.display()))?;
    let mut wanted = vec![
        (
            "applicant".to_owned(),
            IdentitySpec::individual(DEMO_APPLICANT_IIN, "СЕРИКБАЕВ НУРЛАН"),
        ),
        (
            "operator".to_owned(),
            IdentitySpec::employee(
                DEMO_OPERATOR_IIN,
                "080340012345",
                "АХМЕТОВА АЙГЕРИМ",
                "НАО «Государственная корпорация «Правительство для граждан»",
            ),
        ),
    ];
    for provider in provider_ids(routes) {
        // Each provider's own employee and BIN, so that one provider's
        // identity cannot sign for another.
        if let Some(employee) = demo_employee(routes, &provider) {
            wanted.push((
                format!("provider-{provider}"),
                employee.identity_spec(&provider),
            ));
        }
    }
    wanted.push(("applicant-auth".to_owned(), {
        let mut spec = IdentitySpec::individual(DEMO_APPLICANT_IIN, "СЕРИКБАЕВ НУРЛАН");
        spec.purpose = Purpose::Authentication;
        spec.algorithm = KeyAlgorithm::EcdsaP256;
        spec
    }));
    for (name, spec) in wanted {
        if needs_issuing(dir, &name, &spec) {
            ca.issue(&spec)?.write(&identities, &name)?;
        }
    }
    let systems = dir.0.join("systems");
    std::fs::create_dir_all(&systems)
        .with_context(|| format!("creating `{}`", systems.display()))?;
    for system in routes.systems() {
        let (key, _) = dir.system_identity(&system.id);
        if !key.exists() {
            let spec = IdentitySpec::system(&system.id, system.bin.as_deref(), &system.name_ru);
            ca.issue(&spec)?.write(&systems, &system.id)?;
        }
    }
    Ok(ca)
}

/// Whether demo identity `name` is missing, or was issued for another IIN or
/// BIN than `spec` (a data directory made when every provider shared one
/// employee): then it is issued again.
fn needs_issuing(dir: &DataDir, name: &str, spec: &IdentitySpec) -> bool {
    let (key, cert) = dir.identity(name);
    if !key.exists() {
        return true;
    }
    let Some(der) = certificates(&cert)
        .ok()
        .and_then(|all| all.into_iter().next())
    else {
        return true;
    };
    match shep_nuc::verify::certificate_identity(&der) {
        Ok(found) => found.iin.as_deref() != Some(spec.iin.as_str()) || found.bin != spec.bin,
        // Not a signing certificate (an authentication one): kept as it is.
        Err(_) => false,
    }
}

/// Reads or creates the admin token: config, `SHEP_ADMIN_TOKEN`, or a random
/// one saved in the data directory.
fn admin_token(config: &GatewayConfig, dir: &DataDir) -> anyhow::Result<String> {
    if let Some(token) = &config.admin.token {
        return Ok(token.clone());
    }
    if let Ok(token) = std::env::var("SHEP_ADMIN_TOKEN")
        && !token.is_empty()
    {
        return Ok(token);
    }
    let path = dir.admin_token();
    if let Ok(token) = std::fs::read_to_string(&path) {
        return Ok(token.trim().to_owned());
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    std::fs::write(&path, &token).with_context(|| format!("writing `{}`", path.display()))?;
    Ok(token)
}

fn load_routes(config: &GatewayConfig, registries: &[&str]) -> anyhow::Result<RoutingTable> {
    Ok(match &config.routes {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading routes `{}`", path.display()))?;
            RoutingTable::from_toml(&text, &path.display().to_string(), registries)?
        }
        None => RoutingTable::from_toml(DEFAULT_ROUTES, "embedded", registries)?,
    })
}

fn read_pems(paths: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut all = Vec::new();
    for path in paths {
        all.extend(certificates(path)?);
    }
    Ok(all)
}

/// The in-process registries' data and which registries answer from it.
/// The registry adapters of `config`, by kind (remote where a URL is set,
/// in-process otherwise), and the in-process registries' data.
fn registry_adapters(
    config: &GatewayConfig,
) -> anyhow::Result<(HashMap<RegistryKind, RegistryAdapter>, RegistriesHandle)> {
    let data = Arc::new(
        RegistryData::new(&config.population, config.audit.capacity)
            .context("loading the registries' population and fixtures")?,
    );
    let mut adapters = HashMap::new();
    let mut in_process = Vec::new();
    for kind in RegistryKind::ALL {
        let id = kind.id();
        let adapter = match config.registry_url(kind) {
            Some(url) => Remote::new(id, url)
                .with_context(|| format!("`registries.{id}.url`"))?
                .boxed(),
            None => {
                in_process.push(kind);
                InProcess::new(id, Arc::new(kind.registry(data.clone()))).boxed()
            }
        };
        adapters.insert(kind, adapter);
    }
    Ok((adapters, RegistriesHandle { data, in_process }))
}

/// A running gateway.
#[derive(Debug)]
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    pub admin_token: String,
    /// The in-process registries' data (population, fixtures, audit).
    pub registry_data: Arc<RegistryData>,
    /// Registry ids served in-process.
    pub in_process: Vec<String>,
    pub data_dir: DataDir,
    /// The test НУЦ.
    pub ca: Arc<CertificateAuthority>,
    /// The served `grpc.health.v1` statuses, per registry too.
    pub health: Health,
    /// Whether the listener speaks TLS (`tls.cert` is set).
    pub tls: bool,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    sweeper: JoinHandle<()>,
    /// The background tasks: the remote registries' health probes, the
    /// overdue marks, the SOAP pushes (aborted when dropped).
    probes: JoinSet<()>,
}

impl RunningGateway {
    /// The URL clients connect to: `https://` on a TLS listener.
    pub fn url(&self) -> String {
        format!("{}://{}", scheme(self.tls), self.addr)
    }

    /// Stops serving: ends open streams, lets calls in flight finish (up to
    /// five seconds), then stops.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.engine.close();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.sweeper.abort();
        self.probes.abort_all();
        let stopped = match tokio::time::timeout(Duration::from_secs(5), &mut self.server).await {
            Ok(result) => result
                .map_err(anyhow::Error::from)
                .and_then(|served| Ok(served?)),
            Err(_) => {
                tracing::warn!("calls still running after 5 s; stopping anyway");
                self.server.abort();
                Ok(())
            }
        };
        if let Some(shared) = self.engine.toolkit().shared() {
            shared.close().await;
        }
        // Everything acknowledged is on disk; release the file for the next start.
        self.engine.close_storage().await;
        stopped
    }

    /// Resolves when the server stops on its own (an error).
    pub async fn stopped(&mut self) -> anyhow::Result<()> {
        (&mut self.server).await??;
        Ok(())
    }
}

/// Starts a gateway on `listener` with `config`.
pub async fn start_on(
    listener: TcpListener,
    config: GatewayConfig,
) -> anyhow::Result<RunningGateway> {
    config.validate()?;
    let addr = listener.local_addr()?;
    let data_dir = DataDir(config.data_dir.clone());
    std::fs::create_dir_all(&data_dir.0)
        .with_context(|| format!("creating data dir `{}`", data_dir.0.display()))?;

    let (registries, handle) = registry_adapters(&config)?;
    let routes = load_routes(&config, &RegistryKind::IDS)?;

    let public_url = config
        .nuc
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{}://{addr}", scheme(config.listener_tls())));
    let ca = Arc::new(prepare_data_dir(&data_dir, &routes, &public_url)?);
    let status_adapter = match &config.nuc.url {
        Some(url) => RemoteNuc::new(url)?.boxed(),
        None => InProcessNuc::new(ca.clone()).boxed(),
    };
    let revocation = RevocationCheck::new(
        status_adapter,
        Duration::from_millis(config.checks.revocation_cache_ms),
    );
    let (anchors, intermediates) = if config.trust.anchors.is_empty() {
        (
            vec![ca.root_der().to_vec()],
            vec![ca.issuing_der().to_vec()],
        )
    } else {
        (
            read_pems(&config.trust.anchors)?,
            read_pems(&config.trust.intermediates)?,
        )
    };
    let verifier = SignatureVerifier::new(
        &anchors,
        &intermediates,
        Duration::from_secs(config.checks.chain_cache_secs),
    )
    .map_err(anyhow::Error::msg)?;
    let token = admin_token(&config, &data_dir)?;
    // The one place that picks the storage backend.
    let storage = match (&config.cluster.nats, config.journal.mode) {
        (Some(url), _) => {
            let options = storage::jetstream::JetStreamOptions {
                url: url.clone(),
                prefix: config.cluster.prefix.clone(),
                replicas: config.cluster.replicas,
            };
            storage::jetstream::open(&options)
                .await
                .with_context(|| format!("opening the JetStream backend at `{url}`"))?
        }
        (None, JournalMode::Disk) => {
            let path = data_dir.journal();
            storage::embedded::open(&path)
                .with_context(|| format!("opening the journal `{}`", path.display()))?
        }
        (None, JournalMode::Memory) => storage::memory::open(),
    };
    tracing::info!(backend = storage.backend(), "storage opened");
    let engine = Arc::new(
        Engine::new(&config, routes, verifier, revocation, registries)
            .with_storage(storage)
            .with_access_audit(handle.data.clone()),
    );

    if let Some(url) = &config.cluster.nats {
        let options = storage::jetstream::JetStreamOptions {
            url: url.clone(),
            prefix: config.cluster.prefix.clone(),
            replicas: config.cluster.replicas,
        };
        crate::toolkit::shared::open(&options, engine.toolkit().clone(), handle.data.clone())
            .await
            .with_context(|| format!("sharing the toolkit through NATS at `{url}`"))?;
    }

    for path in &config.toolkit.scenarios {
        let scenario = crate::toolkit::scenarios::read_file(path).map_err(anyhow::Error::msg)?;
        crate::admin::put_scenario(&engine, scenario)
            .await
            .map_err(|error| anyhow::anyhow!("scenario `{}`: {error}", path.display()))?;
    }

    let remotes = remote_urls(&config);
    let remote_ids: Vec<&str> = remotes.iter().map(|(id, _)| *id).collect();
    let (health, health_service) = Health::new(&remote_ids).await;
    let mut probes = JoinSet::new();
    let every = Duration::from_millis(config.health.probe_interval_ms);
    for (id, url) in &remotes {
        probes.spawn(
            health
                .probe(id, url, every)
                .with_context(|| format!("probing `{id}` at `{url}`"))?,
        );
    }

    probes.spawn(follow_not_serving_faults(engine.clone(), health.clone()));
    probes.spawn(follow_storage(engine.clone(), health.clone()));
    probes.spawn(crate::overdue::run(engine.clone()));
    // ШЭП's PUSH to the systems that have a `soap_endpoint`.
    crate::soap::push::spawn(&engine, &mut probes);

    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    // Call, Submit and Report share one pipeline, its layers and its limit.
    let pipeline = crate::pipeline::stack(
        engine.clone(),
        Limits {
            max_concurrent: config.limits.max_concurrent,
        },
    );
    let admin_auth = AdminAuth::new(&token, config.admin_client_certificates());
    let required = config.auth.participants == ParticipantAuth::Required;
    if !required {
        tracing::warn!(
            %addr,
            "participants are not authenticated (`auth.participants = \"off\"`): anyone who reaches this port can act as any system and read any applicant's applications"
        );
    }
    let authenticate = Authenticate::new(engine.clone(), required);
    let max_message = config.limits.max_message_bytes;
    let soap_pipeline = pipeline.clone();
    let grpc = tonic::service::Routes::new(health_service)
        .add_service(reflection_builder().build_v1()?)
        .add_service(reflection_builder().build_v1alpha()?)
        // Every participant call authenticated before any method runs.
        .add_service(tonic::service::interceptor::InterceptedService::new(
            GatewayServer::new(GatewayGrpcAdapter::new(engine.clone(), pipeline.clone()))
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
            authenticate.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            ProviderServer::new(ProviderGrpcAdapter::new(engine.clone(), pipeline))
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
            authenticate,
        ))
        // Every admin method behind the token or a listed client certificate.
        .add_service(tonic::service::interceptor::InterceptedService::new(
            AdminServer::new(AdminGrpcAdapter::new(
                engine.clone(),
                config.routes.clone(),
                handle.clone(),
            ))
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message),
            admin_auth,
        ))
        .add_service(
            NucServer::new(NucGrpcAdapter::new(ca.clone(), &token))
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
        );
    // The Admin API over HTTP calls the gRPC services in-process: a clone of
    // them, without the HTTP routes, so it cannot call itself.
    let admin_http = crate::admin_http::router(grpc.clone())?;
    // ШЭП's SOAP front door: the same pipeline and services, in ШЭП's terms.
    let console = crate::console::router(engine.clone(), soap_pipeline.clone());
    let soap = crate::soap::router(
        engine.clone(),
        soap_pipeline,
        required,
        config.listener_tls(),
        max_message,
    );
    // Plain HTTP on the same port for what certificates point at (the CRL),
    // the metrics and the Admin API as JSON.
    let routes = grpc
        .into_axum_router()
        // tonic's own refusals (undecodable, too large) in the catalogue's terms.
        .layer(axum::middleware::map_response(crate::grpc::refine))
        .merge(http_routes(ca.clone()))
        .merge(metrics_route(engine.clone()))
        .merge(admin_http)
        .merge(soap)
        .merge(console);
    let tls = tls::server_tls(&config, &data_dir, &ca, addr, &anchors)
        .context("configuring TLS (`tls.cert`, `tls.key`, `tls.client_ca`)")?;
    let server = listen::serve(&engine, routes, listener, tls, async {
        let _ = shutdown_rx.await;
    });

    // Leases are checked a few times per lease period.
    let tick = (engine.lease() / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let sweeper = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            loop {
                interval.tick().await;
                crate::provider::expire_leases(&engine).await;
            }
        })
    };
    tracing::info!(%addr, routes = engine.routes().source(), "gateway listening");
    Ok(RunningGateway {
        addr,
        engine,
        admin_token: token,
        registry_data: handle.data,
        in_process: handle
            .in_process
            .iter()
            .map(|kind| kind.id().to_owned())
            .collect(),
        data_dir,
        ca,
        health,
        tls: config.listener_tls(),
        shutdown: Some(shutdown_tx),
        server,
        sweeper,
        probes,
    })
}

/// The registries (and НУЦ) of `config` reached over gRPC, by id, with their URL.
fn remote_urls(config: &GatewayConfig) -> Vec<(&str, &str)> {
    RegistryKind::ALL
        .into_iter()
        .filter_map(|kind| Some((kind.id(), config.registry_url(kind)?)))
        .chain(config.nuc.url.as_deref().map(|url| (NUC_ID, url)))
        .collect()
}

/// Server reflection over every service served here: the shep protos, health,
/// and reflection itself in both versions, so a client speaking either version
/// sees the other listed too. Build it with `build_v1` and `build_v1alpha`:
/// grpcurl and Postman ask v1 first, older clients (grpcio-reflection) only v1alpha.
pub fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(shep_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}

fn scheme(tls: bool) -> &'static str {
    if tls { "https" } else { "http" }
}

/// Binds `config.listen` and starts a gateway.
pub async fn start(config: GatewayConfig) -> anyhow::Result<RunningGateway> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding `{}`", config.listen))?;
    start_on(listener, config).await
}

/// `GET /metrics`: the Prometheus text exposition.
fn metrics_route(engine: Arc<Engine>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let engine = engine.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    engine.metrics().encode(),
                )
            }
        }),
    )
}

/// The provider systems the table routes to, sorted.
pub fn provider_ids(routes: &RoutingTable) -> Vec<String> {
    let mut ids: Vec<String> = routes
        .routes()
        .iter()
        .flat_map(|route| match &route.target {
            crate::routes::Target::Providers { by_region, default } => by_region
                .iter()
                .map(|(_, id)| id.clone())
                .chain(default.clone())
                .collect::<Vec<_>>(),
            crate::routes::Target::Registry(_) => Vec::new(),
        })
        .filter(|id| {
            routes
                .system(id)
                .is_some_and(|system| system.role == Role::Provider)
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Keeps `shep.storage`'s health in step with the backend: NOT_SERVING while
/// it cannot store work (JetStream: NATS unreachable).
async fn follow_storage(engine: Arc<Engine>, health: crate::health::Health) {
    let mut every = tokio::time::interval(Duration::from_millis(250));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = true;
    loop {
        every.tick().await;
        let (backend, serving) = engine.storage_state();
        if serving != last {
            if serving {
                tracing::info!(backend, "storage serving again");
            } else {
                tracing::warn!(
                    backend,
                    "storage cannot store work: refusing it with STORAGE_UNAVAILABLE"
                );
            }
            health.set_storage(serving).await;
            last = serving;
        }
    }
}

/// Keeps the registries' health overrides in step with `not_serving` faults:
/// on every change of the faults, and a few times a second for their windows.
async fn follow_not_serving_faults(engine: Arc<Engine>, health: crate::health::Health) {
    use tonic_health::ServingStatus;
    let faults = &engine.toolkit().faults;
    let mut changed = faults.subscribe();
    let mut held = std::collections::BTreeSet::new();
    loop {
        let now = faults.not_serving();
        for id in now.difference(&held) {
            let name = crate::health::registry_name(id);
            health
                .set_override(&name, Some(ServingStatus::NotServing))
                .await;
        }
        for id in held.difference(&now) {
            health
                .set_override(&crate::health::registry_name(id), None)
                .await;
        }
        held = now;
        tokio::select! {
            result = changed.changed() => if result.is_err() { return },
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}
