//! The `shep` command.

mod certs;
mod demo;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use prost::Message;
use shep_proto::envelope::v1::{
    Attachment, Body, Channel, PowerOfAttorneyRef, SignedEnvelope, Subject, subject,
};
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use shep_proto::gateway::v1::{
    Application, GetStatusRequest, HistoryRequest, StatusEvent, WatchRequest, watch_request,
};
use shep_proto::registry::v1::LookupRequest;
use shep_proto::registry::v1::lookup_request::Key;
use shep_proto::registry::v1::lookup_response::Record;
use shep_proto::registry::v1::registry_admin_server::RegistryAdminServer;
use shep_proto::registry::v1::registry_server::RegistryServer;
use shep_proto::registry::v1::{LegalEntity, Person, PowerOfAttorney};
use shep_registries::data::Identifiers;
use shep_registries::enis::PowerOfAttorneyRegistry;
use shep_registries::gbdfl::PersonRegistry;
use shep_registries::gbdul::LegalEntityRegistry;
use shep_registries::grpc::{RegistryAdminGrpcAdapter, RegistryGrpcAdapter};
use shep_registries::ident::{Strictness, parse_bin, parse_iin};
use shep_registries::nuc::Signer;
use shep_registries::{PopulationConfig, Registry, RegistryData, RegistryError, RegistryKind};
use tokio_stream::StreamExt;
use tonic::transport::Channel as GrpcChannel;
use tonic_types::StatusExt;

use crate::client::{Participant, ProviderRule, iin, run_provider};
use crate::config::{GatewayConfig, REGISTRY_IDS};
use crate::routes::{DEFAULT_ROUTES, RoutingTable, ServiceKind};
use crate::server::DataDir;

/// shep-sim: a simulator of Kazakhstan's e-government gateway (ШЭП / РШЭП).
#[derive(Debug, Parser)]
#[command(name = "shep", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the gateway with its registries on embedded defaults.
    Serve(ServeArgs),
    /// Shows a signed application travel portal -> gateway -> provider -> back.
    Demo,
    /// Runs a simulated provider system on its request stream.
    Provider(ProviderArgs),
    /// Signs and sends an envelope: Submit for applications, Call for lookups.
    Send(SendArgs),
    /// Shows one application's status (Gateway.GetStatus).
    Status {
        message_id: String,
        #[arg(long, default_value = DEFAULT_GATEWAY)]
        gateway: String,
    },
    /// Shows an applicant's «История получения услуг» (Gateway.History).
    History {
        iin: String,
        #[arg(long, default_value = DEFAULT_GATEWAY)]
        gateway: String,
    },
    /// Runs one registry alone as a gRPC server (shep.registry.v1.Registry,
    /// and RegistryAdmin for its audit and fixtures).
    Registry(RegistryArgs),
    /// Shows records of the synthetic population (with fixtures) without a
    /// server: what the registries would answer.
    Population {
        #[command(subcommand)]
        command: PopulationCommand,
    },
    /// Works with routing table files.
    Routes {
        #[command(subcommand)]
        command: RoutesCommand,
    },
    /// Issues, revokes and shows НУЦ certificates.
    Certs {
        #[command(subcommand)]
        command: certs::CertsCommand,
    },
    /// Loads the gateway with pre-signed envelopes and reports latency
    /// percentiles and throughput; or compares two JSON reports.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Lists the dead letters (delivery stopped), or requeues one.
    DeadLetters {
        /// Requeue this message id instead of listing.
        #[arg(long)]
        requeue: Option<String>,
        /// Only this provider's.
        #[arg(long)]
        provider: Option<String>,
        #[command(flatten)]
        admin: certs::AdminArgs,
    },
    /// Works with the journal (stop the gateway first: it holds the file).
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Writes the FileDescriptorSet of every shep proto (for dynamic protobuf
    /// in other languages, e.g. tests/python/sign_envelope.py).
    Descriptors {
        #[arg(long)]
        out: PathBuf,
    },
    /// Prints the catalogue of error reasons (docs/ERRORS.md holds the same table).
    Errors {
        #[arg(long, value_enum, default_value = "markdown")]
        format: ErrorsFormat,
    },
    /// Signs a serialized `shep.envelope.v1.Body` and writes the `SignedEnvelope`.
    Sign {
        /// PKCS#8 PEM key.
        #[arg(long)]
        key: PathBuf,
        /// PEM certificate, then its chain.
        #[arg(long)]
        cert: PathBuf,
        /// The serialized Body.
        #[arg(long)]
        body: PathBuf,
        /// Where to write the serialized SignedEnvelope.
        #[arg(long)]
        out: PathBuf,
    },
}

const DEFAULT_GATEWAY: &str = "http://127.0.0.1:7700";

/// How `shep errors` prints the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ErrorsFormat {
    /// The Markdown table of docs/ERRORS.md.
    Markdown,
    /// A JSON array, one object per reason.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RegistryName {
    /// ГБД ФЛ, individuals by IIN (default 127.0.0.1:7711).
    Gbdfl,
    /// ГБД ЮЛ, legal entities by BIN (default 127.0.0.1:7712).
    Gbdul,
    /// ЕНИС, powers of attorney by number (default 127.0.0.1:7713).
    Enis,
}

/// The population settings shared by `shep registry`, `shep population` and
/// `shep serve`.
#[derive(Debug, Clone, clap::Args)]
struct PopulationArgs {
    /// The seed of the synthetic population.
    #[arg(long)]
    seed: Option<u64>,
    /// IIN slots of the population (default: every valid IIN).
    #[arg(long)]
    size: Option<u64>,
    /// Share of identifiers (0-0.9) that answer "no data" (default 0.05).
    #[arg(long)]
    absent_share: Option<f64>,
    /// Fixture files applied after the built-in fixtures, in order.
    #[arg(long = "fixtures", num_args = 1..)]
    fixtures: Vec<PathBuf>,
    /// Accept identifiers with a wrong check digit (structure still checked).
    #[arg(long)]
    lenient: bool,
}

impl PopulationArgs {
    /// Applies the flags over `config`.
    fn apply(&self, config: &mut PopulationConfig) -> anyhow::Result<()> {
        if let Some(seed) = self.seed {
            config.seed = seed;
        }
        if self.size.is_some() {
            config.size = self.size;
        }
        if let Some(share) = self.absent_share {
            config.absent_share = share;
        }
        config.fixtures.extend(self.fixtures.iter().cloned());
        if self.lenient {
            config.identifiers = Identifiers::Lenient;
        }
        config.validate("population").map_err(anyhow::Error::msg)
    }

    fn data(&self, audit_capacity: usize) -> anyhow::Result<RegistryData> {
        let mut config = PopulationConfig::default();
        self.apply(&mut config)?;
        Ok(RegistryData::new(&config, audit_capacity)?)
    }
}

#[derive(Debug, clap::Args)]
struct RegistryArgs {
    #[arg(value_enum)]
    registry: RegistryName,
    /// Where to listen (default: 7711 ГБД ФЛ, 7712 ГБД ЮЛ, 7713 ЕНИС on 127.0.0.1).
    #[arg(long)]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    population: PopulationArgs,
    /// Lookups the access audit keeps.
    #[arg(long, default_value_t = shep_registries::audit::DEFAULT_CAPACITY)]
    audit_capacity: usize,
    /// The bearer token of RegistryAdmin (default: SHEP_ADMIN_TOKEN, else a
    /// random one, printed).
    #[arg(long)]
    admin_token: Option<String>,
}

#[derive(Debug, Subcommand)]
enum PopulationCommand {
    /// Shows the record of an IIN, a BIN or a power-of-attorney number.
    Show {
        /// An IIN, a BIN or a power-of-attorney number.
        id: String,
        #[command(flatten)]
        population: PopulationArgs,
    },
    /// Lists persons of the population, with their powers of attorney.
    Sample {
        /// How many persons.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// The first slot to look at.
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[command(flatten)]
        population: PopulationArgs,
    },
}

#[derive(Debug, Subcommand)]
enum RoutesCommand {
    /// Validates a routing table file.
    Check { file: PathBuf },
    /// Prints the embedded default table.
    Default,
}

#[derive(Debug, clap::Args)]
struct BenchRunArgs {
    #[arg(long, value_enum, default_value = "lookup")]
    scenario: crate::loadgen::Scenario,
    #[arg(long, value_enum, default_value = "closed")]
    mode: crate::loadgen::Mode,
    /// `lean`: pre-encoded frames over HTTP/2 (h2), cheap enough to share
    /// the machine with the gateway; `tonic`: the generated gRPC client.
    #[arg(long, value_enum, default_value = "lean")]
    client: crate::loadgen::Client,
    /// Closed loop: workers. Open loop: the most requests in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// HTTP/2 connections the requests are spread over (h2load's `-c`).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Lean client: threads driving the connections (h2load's `-t`).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Open loop: requests per second.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// How long to run, in seconds (at most 240: envelopes are signed
    /// up front and `message_date` must stay within the gateway's skew).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Envelopes to sign up front. Lookups (default 2 048) are sent again
    /// and again in turn: the gateway verifies each one every time. Each
    /// submission is sent once (default: enough for the rate, or 50 000 for
    /// a closed loop), and the run ends when they are used up.
    #[arg(long)]
    requests: Option<usize>,
    /// Writes the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    identity: BenchIdentityArgs,
    #[command(flatten)]
    signing: SigningArgs,
}

/// Which key `shep bench` signs with.
#[derive(Debug, clap::Args)]
struct BenchIdentityArgs {
    /// Signs as the demo applicant with a key of this algorithm (`ed25519` is
    /// the demo identity; the others are issued by the НУЦ of `--nuc` into
    /// `<data_dir>/identities/applicant-<alg>.*.pem` when missing).
    #[arg(long, value_enum, conflicts_with = "key")]
    algorithm: Option<certs::AlgorithmArg>,
    /// The gateway whose НУЦ issues that identity (default: `--gateway`).
    #[arg(long)]
    nuc: Option<String>,
}

impl BenchIdentityArgs {
    /// The applicant's signer: `--algorithm`'s identity, else `--key`/`--cert`
    /// or the demo applicant.
    async fn signer(&self, signing: &SigningArgs) -> anyhow::Result<Signer> {
        match self.algorithm {
            Some(alg) => {
                let nuc = self.nuc.as_deref().unwrap_or(&signing.gateway);
                let (key, cert) = certs::applicant_identity(&signing.data_dir, nuc, alg).await?;
                signer_from(Some(key), Some(cert), &signing.data_dir, "applicant")
            }
            None => signing.signer("applicant"),
        }
    }
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Runs a load.
    Run(BenchRunArgs),
    /// Compares two JSON reports: second / first per row.
    Compare { first: PathBuf, second: PathBuf },
    /// Serves a bare `Gateway.Call` that answers at once, with no checks: the
    /// backend of the peer comparison (direct, and behind nginx `grpc_pass`).
    Echo {
        #[arg(long, default_value = "127.0.0.1:7810")]
        listen: SocketAddr,
    },
    /// Writes one signed lookup as a gRPC frame (flag, length, message), the
    /// request body for h2load.
    Frame {
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        identity: BenchIdentityArgs,
        #[command(flatten)]
        signing: SigningArgs,
    },
}

#[derive(Debug, Subcommand)]
enum JournalCommand {
    /// Checks the hash chain and reports the first broken record.
    Verify {
        /// The data directory of `shep serve`.
        #[arg(long, default_value = ".shep")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// A gateway configuration file (docs/CONFIGURATION.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides `listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Overrides `routes`.
    #[arg(long)]
    routes: Option<PathBuf>,
    /// Overrides `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Overrides `population.*`; `--fixtures` adds to the configured files.
    #[command(flatten)]
    population: PopulationArgs,
}

#[derive(Debug, clap::Args)]
struct ProviderArgs {
    /// The provider system id in the routing table.
    #[arg(long, default_value = "arm-rshep-sko-esil-edu")]
    id: String,
    #[arg(long, value_enum, default_value = "complete")]
    rule: ProviderRule,
    /// Pause between status reports, in milliseconds.
    #[arg(long, default_value_t = 500)]
    delay_ms: u64,
    #[command(flatten)]
    signing: SigningArgs,
}

/// Where the gateway is and which key signs.
#[derive(Debug, clap::Args)]
struct SigningArgs {
    #[arg(long, default_value = DEFAULT_GATEWAY)]
    gateway: String,
    /// The data directory of `shep serve`, for the default key and certificate.
    #[arg(long, default_value = ".shep")]
    data_dir: PathBuf,
    /// PKCS#8 PEM key (default: a demo identity in `<data_dir>/identities/`:
    /// `provider-<id>` for `shep provider`, `applicant` or `operator` by channel for `shep send`).
    #[arg(long)]
    key: Option<PathBuf>,
    /// PEM certificate, then its chain (default: beside the key).
    #[arg(long)]
    cert: Option<PathBuf>,
}

impl SigningArgs {
    fn signer(&self, identity: &str) -> anyhow::Result<Signer> {
        signer_from(
            self.key.clone(),
            self.cert.clone(),
            &self.data_dir,
            identity,
        )
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ChannelArg {
    Portal,
    ServiceCentre,
    ProviderDesk,
    System,
}

impl ChannelArg {
    fn to_proto(self) -> Channel {
        match self {
            Self::Portal => Channel::Portal,
            Self::ServiceCentre => Channel::ServiceCentre,
            Self::ProviderDesk => Channel::ProviderDesk,
            Self::System => Channel::System,
        }
    }
}

#[derive(Debug, clap::Args)]
struct SendArgs {
    /// The service id.
    #[arg(long, required_unless_present = "envelope")]
    service: Option<String>,
    /// The applicant's IIN.
    #[arg(long, required_unless_present_any = ["envelope", "bin"], conflicts_with = "bin")]
    subject: Option<String>,
    /// The applicant's BIN (a legal entity), instead of `--subject`.
    #[arg(long)]
    bin: Option<String>,
    /// A representative's power of attorney: its ЕНИС number (the key of an
    /// ЕНИС lookup).
    #[arg(long)]
    poa: Option<String>,
    /// The representative's IIN, with `--poa`.
    #[arg(long, requires = "poa")]
    representative: Option<String>,
    /// The declared purpose of a lookup, recorded in the registry's audit.
    #[arg(long)]
    purpose: Option<String>,
    /// Sends a ready serialized SignedEnvelope (e.g. from `shep sign` or
    /// another language) instead of building one.
    #[arg(long, conflicts_with_all = ["service", "subject", "bin", "payload", "attach"])]
    envelope: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "portal")]
    channel: ChannelArg,
    /// The sending system id.
    #[arg(long, default_value = "pep")]
    sender: String,
    /// A JSON file with the form data.
    #[arg(long)]
    payload: Option<PathBuf>,
    /// Files to attach.
    #[arg(long)]
    attach: Vec<PathBuf>,
    /// Marks the message as a test message.
    #[arg(long)]
    test: bool,
    /// After Submit, follow the application's status events.
    #[arg(long)]
    watch: bool,
    /// A test session (`x-shep-session`): the session's faults and fixtures
    /// apply, and the exchange is journalled under it.
    #[arg(long)]
    session: Option<String>,
    #[command(flatten)]
    signing: SigningArgs,
    /// A routing table to learn the service's kind from (default: the embedded one).
    #[arg(long)]
    routes: Option<PathBuf>,
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Demo => demo::run().await,
        Command::Provider(args) => provider(args).await,
        Command::Send(args) => send(args).await,
        Command::Status {
            message_id,
            gateway,
        } => {
            let mut client = GatewayClient::new(connect(&gateway).await?);
            let application = client
                .get_status(GetStatusRequest { message_id })
                .await
                .map_err(describe)?
                .into_inner();
            print_application(&application);
            Ok(())
        }
        Command::History {
            iin: subject,
            gateway,
        } => {
            let mut client = GatewayClient::new(connect(&gateway).await?);
            let history = client
                .history(HistoryRequest {
                    subject: Some(iin(&subject)),
                    page_size: 50,
                    page_token: String::new(),
                })
                .await
                .map_err(describe)?
                .into_inner();
            println!(
                "История получения услуг for {subject}: {} application(s)",
                history.applications.len()
            );
            for application in &history.applications {
                print_application(application);
            }
            Ok(())
        }
        Command::Registry(args) => serve_registry(args).await,
        Command::Population { command } => population(command),
        Command::Certs { command } => certs::run(command).await,
        Command::Bench { command } => bench(command).await,
        Command::DeadLetters {
            requeue,
            provider,
            admin,
        } => certs::dead_letters(requeue, provider, admin).await,
        Command::Journal {
            command: JournalCommand::Verify { data_dir },
        } => {
            let path = DataDir(data_dir).journal();
            match crate::journal::verify_file(&path) {
                Ok(records) => {
                    println!("{}: {records} records, chain intact", path.display());
                    Ok(())
                }
                Err(error) => anyhow::bail!("{}: {error}", path.display()),
            }
        }
        Command::Descriptors { out } => {
            std::fs::write(&out, shep_proto::FILE_DESCRIPTOR_SET)
                .with_context(|| format!("writing `{}`", out.display()))?;
            println!("wrote `{}`", out.display());
            Ok(())
        }
        Command::Errors { format } => {
            match format {
                ErrorsFormat::Markdown => print!("{}", crate::error::catalogue_markdown()),
                ErrorsFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&crate::error::catalogue_json())?
                ),
            }
            Ok(())
        }
        Command::Sign {
            key,
            cert,
            body,
            out,
        } => certs::sign(&key, &cert, &body, &out),
        Command::Routes { command } => match command {
            RoutesCommand::Check { file } => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading `{}`", file.display()))?;
                let table =
                    RoutingTable::from_toml(&text, &file.display().to_string(), REGISTRY_IDS)?;
                println!("{}: ok, {} services", file.display(), table.routes().len());
                Ok(())
            }
            RoutesCommand::Default => {
                print!("{DEFAULT_ROUTES}");
                Ok(())
            }
        },
    }
}

/// Connects to a gRPC endpoint.
pub async fn connect(url: &str) -> anyhow::Result<GrpcChannel> {
    GrpcChannel::from_shared(url.to_owned())
        .with_context(|| format!("bad gateway url `{url}`"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("connecting to `{url}` (is `shep serve` running?)"))
}

/// A gRPC error as a person reads it: code, message and reason.
pub fn describe(status: tonic::Status) -> anyhow::Error {
    let reason = status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_else(|| "-".to_owned());
    anyhow::anyhow!(
        "{:?}: {} (reason {reason})",
        status.code(),
        status.message()
    )
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => GatewayConfig::load(path)?,
        None => GatewayConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(routes) = args.routes {
        config.routes = Some(routes);
    }
    if let Some(data_dir) = args.data_dir {
        config.data_dir = data_dir;
    }
    args.population.apply(&mut config.population)?;
    // Install the Ctrl-C handler (on the future's first poll) before the port
    // opens: a SIGINT while the gateway starts would otherwise end the process
    // without the graceful stop, and a client that saw it serving may send one.
    let mut interrupt = Box::pin(tokio::signal::ctrl_c());
    if let Poll::Ready(result) =
        std::future::poll_fn(|cx| Poll::Ready(interrupt.as_mut().poll(cx))).await
    {
        return result.map_err(anyhow::Error::from);
    }
    let gateway = crate::server::start(config).await?;
    let data_dir = &gateway.data_dir;
    let routes = gateway.engine.routes();
    println!("shep-sim gateway listening on {}", gateway.url());
    println!(
        "  routing table: {} ({} services)",
        routes.source(),
        routes.routes().len()
    );
    println!("  test НУЦ: {}", data_dir.nuc().display());
    println!(
        "  identities (key + certificate PEM): {}",
        data_dir.identities().display()
    );
    println!(
        "  admin token: {}",
        if data_dir.admin_token().exists() {
            data_dir.admin_token().display().to_string()
        } else {
            "from the configuration".to_owned()
        }
    );
    let (fixtures, _) = gateway.registry_data.summary();
    let population = gateway.registry_data.population();
    println!(
        "  registries: {} in-process; population seed {}, {}, {:.0} % absent; fixtures: {}",
        gateway.in_process.join(", "),
        population.seed(),
        population
            .size()
            .map(|size| format!("{size} IIN slots"))
            .unwrap_or_else(|| "every valid IIN".to_owned()),
        population.absent_share() * 100.0,
        fixtures.sources.join(", ")
    );
    println!("  try: shep provider --id arm-rshep-sko-esil-edu   (in another terminal)");
    println!(
        "       shep send --service guardianship-certificate-esil --subject 850315301235 --watch"
    );
    let mut gateway = gateway;
    let interrupted = tokio::select! {
        result = &mut interrupt => {
            result?;
            true
        }
        result = gateway.stopped() => {
            result?;
            false
        }
    };
    if interrupted {
        println!("stopping");
        gateway.shutdown().await?;
    }
    Ok(())
}

fn signer_from(
    key: Option<PathBuf>,
    cert: Option<PathBuf>,
    data_dir: &Path,
    identity: &str,
) -> anyhow::Result<Signer> {
    let (default_key, default_cert) = DataDir(data_dir.to_owned()).identity(identity);
    let key = key.unwrap_or(default_key);
    let cert = cert.unwrap_or(default_cert);
    Signer::from_files(&key, &cert).with_context(|| {
        format!(
            "loading the key `{}` and certificate `{}` (run `shep serve` once to create the demo identities, or pass --key and --cert)",
            key.display(),
            cert.display()
        )
    })
}

async fn provider(args: ProviderArgs) -> anyhow::Result<()> {
    let signer = args.signing.signer(&format!("provider-{}", args.id))?;
    let participant = Participant::new(&args.id, Channel::ProviderDesk, signer);
    println!(
        "simulated provider `{}` ({:?}) on {}",
        args.id, args.rule, args.signing.gateway
    );
    let channel = connect(&args.signing.gateway).await?;
    run_provider(
        channel,
        participant,
        args.rule,
        Duration::from_millis(args.delay_ms),
        None,
    )
    .await
}

async fn send(args: SendArgs) -> anyhow::Result<()> {
    let table_text = match &args.routes {
        Some(path) => std::fs::read_to_string(path)?,
        None => DEFAULT_ROUTES.to_owned(),
    };
    let table = RoutingTable::from_toml(&table_text, "routes", REGISTRY_IDS)?;
    let (envelope, service) = match &args.envelope {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading `{}`", path.display()))?;
            let envelope = SignedEnvelope::decode(bytes.as_slice()).with_context(|| {
                format!("`{}` is not a serialized SignedEnvelope", path.display())
            })?;
            let body = Body::decode(envelope.body.as_slice()).unwrap_or_default();
            (envelope, body.service_id)
        }
        None => {
            let identity = match args.channel {
                ChannelArg::Portal => "applicant",
                ChannelArg::ServiceCentre | ChannelArg::ProviderDesk | ChannelArg::System => {
                    "operator"
                }
            };
            let signer = args.signing.signer(identity)?;
            let participant = Participant::new(&args.sender, args.channel.to_proto(), signer);
            let service = args.service.clone().unwrap_or_default();
            let subject = match (&args.subject, &args.bin) {
                (_, Some(bin)) => Subject {
                    id: Some(subject::Id::Bin(bin.clone())),
                },
                (Some(subject), None) => iin(subject),
                (None, None) => anyhow::bail!("give `--subject IIN` or `--bin BIN`"),
            };
            let form = match &args.payload {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading `{}`", path.display()))?,
                None => "{}".to_owned(),
            };
            let mut attachments = Vec::new();
            for path in &args.attach {
                attachments.push(Attachment {
                    name: path
                        .file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    content_type: "application/octet-stream".to_owned(),
                    data: std::fs::read(path)
                        .with_context(|| format!("reading `{}`", path.display()))?,
                });
            }
            let mut body = participant.application(&service, subject, &form, attachments);
            body.test = args.test;
            body.purpose = args.purpose.clone().unwrap_or_default();
            if let Some(number) = &args.poa {
                body.power_of_attorney = Some(PowerOfAttorneyRef {
                    number: number.clone(),
                    representative_iin: args.representative.clone().unwrap_or_default(),
                });
            }
            (participant.seal(&body)?, service)
        }
    };
    let kind = table
        .route(&service)
        .map(|route| route.kind)
        .unwrap_or(ServiceKind::Application);
    let channel = connect(&args.signing.gateway).await?;
    let mut client = GatewayClient::new(channel.clone());
    let session = args
        .session
        .as_deref()
        .map(|id| {
            tonic::metadata::MetadataValue::try_from(id)
                .map_err(|_| anyhow::anyhow!("`--session` must be printable ASCII"))
        })
        .transpose()?;
    let in_session = |envelope| {
        let mut request = tonic::Request::new(envelope);
        if let Some(session) = &session {
            request
                .metadata_mut()
                .insert(crate::toolkit::SESSION_HEADER, session.clone());
        }
        request
    };
    if kind == ServiceKind::Lookup {
        let response = client
            .call(in_session(envelope))
            .await
            .map_err(describe)?
            .into_inner();
        let info = response.response_info.unwrap_or_default();
        let status = info.status.unwrap_or_default();
        println!(
            "{} {} (response {})",
            status.code, status.message, info.message_id
        );
        match response.lookup.and_then(|lookup| lookup.record) {
            Some(Record::Person(person)) => print_person(&person),
            Some(Record::LegalEntity(entity)) => print_entity(&entity),
            Some(Record::PowerOfAttorney(attorney)) => print_attorney(&attorney),
            None => {}
        }
        return Ok(());
    }
    let receipt = client
        .submit(in_session(envelope))
        .await
        .map_err(describe)?
        .into_inner();
    println!(
        "accepted: message_id {} routed to `{}`",
        receipt.message_id, receipt.provider_id
    );
    if args.watch {
        let mut events = client
            .watch(WatchRequest {
                target: Some(watch_request::Target::MessageId(receipt.message_id)),
                after_sequence: 0,
            })
            .await
            .map_err(describe)?
            .into_inner();
        while let Some(event) = events.next().await {
            let event = event.map_err(describe)?;
            print_event(&event);
            if let Some(result) = &event.result {
                check_result(result, &args.signing.data_dir, channel.clone()).await;
            }
            if crate::lifecycle::is_terminal(event.status()) {
                break;
            }
        }
    }
    Ok(())
}

/// Verifies a result document on the receiving side: its signature against
/// the НУЦ's certificates, and its signer's status at the НУЦ.
async fn check_result(
    result: &shep_proto::envelope::v1::SignedDocument,
    data_dir: &Path,
    channel: GrpcChannel,
) {
    let nuc = DataDir(data_dir.to_owned()).nuc();
    let verified = crate::client::TrustAnchors::from_nuc_dir(&nuc)
        .and_then(|anchors| anchors.verify_document(result).map_err(anyhow::Error::from));
    match verified {
        Ok(signer) => {
            let status = shep_proto::nuc::v1::nuc_client::NucClient::new(channel)
                .get_status(shep_proto::nuc::v1::StatusRequest {
                    id: Some(shep_proto::nuc::v1::status_request::Id::CertificateDer(
                        result
                            .signature
                            .as_ref()
                            .map(|signature| signature.certificate_der.clone())
                            .unwrap_or_default(),
                    )),
                })
                .await
                .map(|response| response.into_inner().status().as_str_name().to_owned())
                .unwrap_or_else(|status| format!("not asked: {}", status.message()));
            println!(
                "      result signature verified: {} (IIN {}, BIN {}), certificate {status}",
                signer.common_name,
                signer.iin.as_deref().unwrap_or("-"),
                signer.bin.as_deref().unwrap_or("-")
            );
        }
        Err(error) => println!("      result signature NOT verified: {error:#}"),
    }
}

async fn bench(command: BenchCommand) -> anyhow::Result<()> {
    use crate::loadgen::{self, Mode, Report, Scenario, Settings};
    let run = match command {
        BenchCommand::Echo { listen } => {
            let listener = tokio::net::TcpListener::bind(listen).await?;
            eprintln!("echo backend (Gateway.Call) on {listen}");
            return crate::loadgen::serve_echo(listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        }
        BenchCommand::Frame {
            out,
            identity,
            signing,
        } => {
            let applicant =
                Participant::new("pep", Channel::Portal, identity.signer(&signing).await?);
            let envelope = applicant.seal(
                &applicant.request("GbdflInfoByIin_v1", iin(crate::server::DEMO_APPLICANT_IIN)),
            )?;
            let frame = loadgen::grpc_frame(&envelope);
            std::fs::write(&out, &frame).with_context(|| format!("writing `{}`", out.display()))?;
            eprintln!(
                "wrote a {}-byte gRPC frame to `{}`",
                frame.len(),
                out.display()
            );
            return Ok(());
        }
        BenchCommand::Compare { first, second } => {
            let read = |path: &Path| -> anyhow::Result<Report> {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading `{}`", path.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("`{}` is not a `shep bench` report", path.display()))
            };
            print!("{}", loadgen::compare(&read(&first)?, &read(&second)?));
            return Ok(());
        }
        BenchCommand::Run(args) => args,
    };
    let BenchRunArgs {
        scenario,
        mode,
        client,
        concurrency,
        connections,
        threads,
        rate,
        seconds,
        requests,
        json,
        identity,
        signing,
    } = run;
    anyhow::ensure!((1..=240).contains(&seconds), "`--seconds` must be 1-240");
    anyhow::ensure!(rate > 0.0, "`--rate` must be > 0");
    anyhow::ensure!(
        concurrency > 0 && connections > 0 && threads > 0,
        "`--concurrency`, `--connections` and `--threads` must be > 0"
    );
    let signer = identity.signer(&signing).await?;
    let algorithm = format!(
        "{:?}",
        shep_proto::envelope::v1::SignatureAlgorithm::try_from(signer.sign(b"probe")?.algorithm)
            .unwrap_or_default()
    );
    let applicant = Participant::new("pep", Channel::Portal, signer);
    let count = requests.unwrap_or(match (scenario, mode) {
        // Sent in turn again and again; enough that no two in flight are alike.
        (Scenario::Lookup, _) => 2048,
        (Scenario::Submit, Mode::Open) => (rate * seconds as f64).ceil() as usize + 1,
        (Scenario::Submit, Mode::Closed) => 50_000,
    });
    let (service, subject) = match scenario {
        Scenario::Lookup => ("GbdflInfoByIin_v1", crate::server::DEMO_APPLICANT_IIN),
        Scenario::Submit => (
            "guardianship-certificate-esil",
            crate::server::DEMO_APPLICANT_IIN,
        ),
    };
    eprintln!("signing {count} envelopes ({algorithm}) ...");
    let envelopes = (0..count)
        .map(|_| applicant.seal(&applicant.request(service, iin(subject))))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let acker = if scenario == Scenario::Submit {
        let channel = connect(&signing.gateway).await?;
        Some(tokio::spawn(loadgen_ack_all(
            channel,
            "arm-rshep-sko-esil-edu".to_owned(),
        )))
    } else {
        None
    };
    let settings = Settings {
        scenario,
        mode,
        client,
        concurrency,
        connections,
        threads,
        rate,
        duration: Duration::from_secs(seconds),
        algorithm,
    };
    let report = loadgen::run(
        &signing.gateway,
        &settings,
        envelopes,
        |elapsed, ok, errors| {
            eprintln!(
                "  {:>4.0} s  ok {ok}  errors {errors}",
                elapsed.as_secs_f64()
            );
        },
    )
    .await;
    if let Some(acker) = acker {
        acker.abort();
    }
    let report = report?;
    print!("{}", loadgen::table(&report));
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing `{}`", path.display()))?;
        eprintln!("report written to `{}`", path.display());
    }
    Ok(())
}

/// Acknowledges everything delivered to `provider`, so a submit load does
/// not pile up in its queue.
async fn loadgen_ack_all(channel: GrpcChannel, provider: String) -> anyhow::Result<()> {
    use shep_proto::provider::v1::provider_client::ProviderClient;
    use shep_proto::provider::v1::{
        Ack, Hello, ReceiveStatus, SubscribeRequest, subscribe_request, subscribe_response,
    };
    let (uplink, outbound) = tokio::sync::mpsc::channel(1024);
    uplink
        .send(SubscribeRequest {
            kind: Some(subscribe_request::Kind::Hello(Hello {
                provider_id: provider,
                max_in_flight: 1024,
                service_ids: Vec::new(),
            })),
        })
        .await?;
    let mut inbound = ProviderClient::new(channel)
        .subscribe(tokio_stream::wrappers::ReceiverStream::new(outbound))
        .await
        .map_err(describe)?
        .into_inner();
    while let Some(message) = inbound.next().await {
        if let Some(subscribe_response::Kind::Delivery(delivery)) = message.map_err(describe)?.kind
        {
            uplink
                .send(SubscribeRequest {
                    kind: Some(subscribe_request::Kind::Ack(Ack {
                        message_id: delivery.message_id,
                        receive_status: ReceiveStatus::MessageAccepted as i32,
                        ..Ack::default()
                    })),
                })
                .await?;
        }
    }
    Ok(())
}

async fn serve_registry(args: RegistryArgs) -> anyhow::Result<()> {
    let data = Arc::new(args.population.data(args.audit_capacity)?);
    let (name, port) = match args.registry {
        RegistryName::Gbdfl => ("ГБД ФЛ", 7711),
        RegistryName::Gbdul => ("ГБД ЮЛ", 7712),
        RegistryName::Enis => ("ЕНИС", 7713),
    };
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], port)));
    let token = match args.admin_token.clone() {
        Some(token) => token,
        None => match std::env::var("SHEP_ADMIN_TOKEN") {
            Ok(token) if !token.is_empty() => token,
            _ => uuid::Uuid::new_v4().simple().to_string(),
        },
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding `{listen}`"))?;
    let (summary, _) = data.summary();
    println!(
        "{name} registry (shep.registry.v1.Registry) listening on {}",
        listener.local_addr()?
    );
    println!(
        "  population seed {}, fixtures: {}",
        data.population().seed(),
        summary.sources.join(", ")
    );
    println!("  RegistryAdmin (audit, fixtures) token: {token}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match args.registry {
        RegistryName::Gbdfl => {
            serve_registry_on(
                listener,
                PersonRegistry::new(data.clone()),
                data,
                &token,
                shutdown,
            )
            .await
        }
        RegistryName::Gbdul => {
            let registry = LegalEntityRegistry::new(data.clone());
            serve_registry_on(listener, registry, data, &token, shutdown).await
        }
        RegistryName::Enis => {
            let registry = PowerOfAttorneyRegistry::new(data.clone());
            serve_registry_on(listener, registry, data, &token, shutdown).await
        }
    }
}

/// Serves `registry` (with RegistryAdmin over `data`, health and reflection)
/// on `listener` until `shutdown` resolves. Tests use it to run a registry
/// process of their own.
pub async fn serve_registry_on<R: Registry>(
    listener: tokio::net::TcpListener,
    registry: R,
    data: Arc<RegistryData>,
    admin_token: &str,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<RegistryServer<RegistryGrpcAdapter<R>>>()
        .await;
    health_reporter
        .set_serving::<RegistryAdminServer<RegistryAdminGrpcAdapter>>()
        .await;
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(crate::server::reflection_builder().build_v1()?)
        .add_service(crate::server::reflection_builder().build_v1alpha()?)
        .add_service(RegistryGrpcAdapter::new(Arc::new(registry)).into_server())
        .add_service(RegistryAdminGrpcAdapter::new(data, admin_token).into_server())
        .serve_with_incoming_shutdown(
            // One write per turn of each connection rather than one per
            // answer (coalesce.rs): a gateway multiplexes its lookups on one.
            tokio_stream::StreamExt::map(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                |accepted| accepted.map(crate::coalesce::Coalesce::new),
            ),
            shutdown,
        )
        .await?;
    Ok(())
}

fn population(command: PopulationCommand) -> anyhow::Result<()> {
    match command {
        PopulationCommand::Show { id, population } => {
            let data = population.data(1)?;
            // The registry by the shape of the identifier: an IIN's 5th digit
            // starts a day (0-3), a BIN's is an entity type (4-6).
            let (kind, key) = if parse_iin(&id, Strictness::Lenient).is_ok() {
                (RegistryKind::Persons, Key::Iin(id.clone()))
            } else if parse_bin(&id, Strictness::Lenient).is_ok() {
                (RegistryKind::LegalEntities, Key::Bin(id.clone()))
            } else {
                (
                    RegistryKind::PowersOfAttorney,
                    Key::PowerOfAttorneyNumber(id.clone()),
                )
            };
            let request = LookupRequest {
                key: Some(key),
                context: None,
            };
            let answer = data.lookup(kind, &request).map_err(|error| match error {
                RegistryError::NoData { .. } => {
                    anyhow::anyhow!("{}: no data for `{id}` («нет данных»)", kind.name())
                }
                other => anyhow::anyhow!("{}: {other}", kind.name()),
            })?;
            match answer.record {
                Some(Record::Person(person)) => {
                    print_person(&person);
                    print_person_details(&person);
                }
                Some(Record::LegalEntity(entity)) => print_entity(&entity),
                Some(Record::PowerOfAttorney(attorney)) => print_attorney(&attorney),
                None => {}
            }
            Ok(())
        }
        PopulationCommand::Sample {
            count,
            from,
            population,
        } => {
            let data = population.data(1)?;
            let slots = data
                .population()
                .size()
                .unwrap_or(shep_registries::population::MAX_SIZE);
            let mut shown = 0;
            let mut slot = from;
            while shown < count && slot < slots {
                if let Some(iin) = data.population().iin_at(slot)
                    && let Some(person) = data.person(&iin)
                {
                    print_person(&person);
                    let numbers: Vec<String> = (1..=3)
                        .map(|ordinal| format!("{iin}-{ordinal:02}"))
                        .filter(|number| data.power_of_attorney(number).is_some())
                        .collect();
                    if !numbers.is_empty() {
                        println!("  powers of attorney: {}", numbers.join(", "));
                    }
                    shown += 1;
                }
                slot += 1;
            }
            Ok(())
        }
    }
}

fn print_person_details(person: &Person) {
    let value = |dict: &Option<shep_proto::registry::v1::DictionaryValue>| {
        dict.as_ref()
            .map(|dict| format!("{} {}", dict.code, dict.name_ru))
            .unwrap_or_default()
    };
    println!(
        "  citizenship {}, nationality {}, life status {}{}",
        value(&person.citizenship),
        value(&person.nationality),
        value(&person.life_status),
        if person.death_date.is_empty() {
            String::new()
        } else {
            format!(" (died {})", person.death_date)
        }
    );
    for document in &person.documents {
        println!(
            "  document {} № {}, {} – {}, {}",
            value(&document.r#type),
            document.number,
            document.begin_date,
            document.end_date,
            value(&document.status)
        );
    }
}

/// Prints a legal entity record.
pub fn print_entity(entity: &LegalEntity) {
    let address = entity.address.clone().unwrap_or_default();
    println!(
        "  {} ({}), БИН {}, registered {}, {}",
        entity.short_name_ru,
        entity
            .legal_form
            .as_ref()
            .map(|form| form.name_ru.as_str())
            .unwrap_or(""),
        entity.bin,
        entity.registration_date,
        entity
            .reg_status
            .as_ref()
            .map(|status| status.name_ru.as_str())
            .unwrap_or("")
    );
    println!(
        "  address: {}, {} {} (КАТО {})",
        address.city, address.street, address.building, address.kato
    );
    println!(
        "  head: {} {} (ИИН {})",
        entity.head_position, entity.head_name, entity.head_iin
    );
    for founder in &entity.founders {
        let id = match &founder.id {
            Some(shep_proto::registry::v1::founder::Id::Iin(iin)) => format!("ИИН {iin}"),
            Some(shep_proto::registry::v1::founder::Id::Bin(bin)) => format!("БИН {bin}"),
            None => String::new(),
        };
        println!(
            "  founder: {} ({id}) {} %",
            founder.name, founder.share_percent
        );
    }
}

/// Prints a power of attorney record.
pub fn print_attorney(attorney: &PowerOfAttorney) {
    let principal = if attorney.principal_bin.is_empty() {
        format!("ИИН {}", attorney.principal_iin)
    } else {
        format!(
            "БИН {} (signed by ИИН {})",
            attorney.principal_bin, attorney.principal_iin
        )
    };
    println!(
        "  power of attorney № {}: {principal} -> representative ИИН {}",
        attorney.number, attorney.representative_iin
    );
    println!(
        "  {}, issued {}, valid until {}{}",
        attorney.notary_name,
        attorney.issue_date,
        attorney.valid_until,
        if attorney.revoked {
            format!(", REVOKED {}", attorney.revocation_date)
        } else {
            String::new()
        }
    );
    println!(
        "  services: {}",
        if attorney.service_ids.is_empty() {
            "any".to_owned()
        } else {
            attorney.service_ids.join(", ")
        }
    );
}

/// Prints a person record.
pub fn print_person(person: &shep_proto::registry::v1::Person) {
    let address = person.reg_address.clone().unwrap_or_default();
    println!(
        "  {} {} {}, ИИН {}, born {}, {}",
        person.surname,
        person.name,
        person.patronymic,
        person.iin,
        person.birth_date,
        person
            .gender
            .as_ref()
            .map(|gender| gender.name_ru.as_str())
            .unwrap_or("")
    );
    println!(
        "  registered at {}, {} (КАТО {})",
        address.city, address.street, address.kato
    );
}

/// Prints one status event.
pub fn print_event(event: &StatusEvent) {
    let mut line = format!(
        "  [{}] {:<18} {}",
        event.sequence,
        event.status().as_str_name(),
        event.notification
    );
    if let Some(result) = &event.result {
        line.push_str(&format!(
            " (result `{}`, {} bytes, signed)",
            result.name,
            result.content.len()
        ));
    }
    println!("{line}");
}

/// Prints an application summary.
pub fn print_application(application: &Application) {
    println!(
        "  {} {} -> {}: {} (delivery {}){}{}",
        application.message_id,
        application.service_id,
        application.provider_id,
        application.status().as_str_name(),
        application.delivery_state().as_str_name(),
        if application.registration_number.is_empty() {
            String::new()
        } else {
            format!(", № {}", application.registration_number)
        },
        if application.overdue { ", OVERDUE" } else { "" }
    );
    for event in &application.events {
        print_event(event);
    }
}
