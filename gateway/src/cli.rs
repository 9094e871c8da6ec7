//! The `shep` command.

mod certs;
mod demo;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use prost::Message as _;
use shep_proto::envelope::v1::{Attachment, Body, Channel, SignedEnvelope};
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use shep_proto::gateway::v1::{
    Application, GetStatusRequest, HistoryRequest, StatusEvent, WatchRequest, watch_request,
};
use shep_proto::registry::v1::lookup_response::Record;
use shep_registries::gbdfl::PersonRegistry;
use shep_registries::grpc::RegistryGrpcAdapter;
use shep_registries::nuc::Signer;
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
    /// Runs one registry alone as a gRPC server.
    Registry {
        #[arg(value_enum)]
        registry: RegistryName,
        #[arg(long, default_value = "127.0.0.1:7711")]
        listen: SocketAddr,
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

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RegistryName {
    /// ГБД ФЛ, individuals.
    Gbdfl,
}

#[derive(Debug, Subcommand)]
enum RoutesCommand {
    /// Validates a routing table file.
    Check { file: PathBuf },
    /// Prints the embedded default table.
    Default,
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
    #[arg(long, required_unless_present = "envelope")]
    subject: Option<String>,
    /// Sends a ready serialized SignedEnvelope (e.g. from `shep sign` or
    /// another language) instead of building one.
    #[arg(long, conflicts_with_all = ["service", "subject", "payload", "attach"])]
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
        Command::Registry { registry, listen } => serve_registry(registry, listen).await,
        Command::Certs { command } => certs::run(command).await,
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
    println!("  try: shep provider --id arm-rshep-sko-esil-edu   (in another terminal)");
    println!(
        "       shep send --service guardianship-certificate-esil --subject 850315301235 --watch"
    );
    let mut gateway = gateway;
    let interrupted = tokio::select! {
        result = tokio::signal::ctrl_c() => {
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
            let subject = args.subject.clone().unwrap_or_default();
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
            let mut body = participant.application(&service, iin(&subject), &form, attachments);
            body.test = args.test;
            (participant.seal(&body)?, service)
        }
    };
    let kind = table
        .route(&service)
        .map(|route| route.kind)
        .unwrap_or(ServiceKind::Application);
    let channel = connect(&args.signing.gateway).await?;
    let mut client = GatewayClient::new(channel.clone());
    if kind == ServiceKind::Lookup {
        let response = client.call(envelope).await.map_err(describe)?.into_inner();
        let info = response.response_info.unwrap_or_default();
        let status = info.status.unwrap_or_default();
        println!(
            "{} {} (response {})",
            status.code, status.message, info.message_id
        );
        if let Some(Record::Person(person)) = response.lookup.and_then(|lookup| lookup.record) {
            print_person(&person);
        }
        return Ok(());
    }
    let receipt = client
        .submit(envelope)
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

async fn serve_registry(registry: RegistryName, listen: SocketAddr) -> anyhow::Result<()> {
    let RegistryName::Gbdfl = registry;
    let adapter = RegistryGrpcAdapter::new(Arc::new(PersonRegistry::builtin()));
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<shep_proto::registry::v1::registry_server::RegistryServer<
            RegistryGrpcAdapter<PersonRegistry>,
        >>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(shep_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    println!("ГБД ФЛ registry (shep.registry.v1.Registry) listening on {listen}");
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(adapter.into_server())
        .serve_with_shutdown(listen, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
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
