//! The `shep` command: its arguments, and one module per subcommand (or
//! group of them) with what that subcommand runs.

mod admin;
mod bench;
mod bench_soap;
mod bindings;
mod certs;
mod conformance;
mod demo;
mod example_consumer;
mod flow;
mod population;
mod print;
mod provider;
mod registry;
mod send;
mod serve;
mod soap;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use shep_gateway::config::REGISTRY_IDS;
use shep_gateway::routes::{DEFAULT_ROUTES, RoutingTable};
use shep_gateway::server::DataDir;
use shep_nuc::ca::Signer;
use tonic::transport::Channel as GrpcChannel;

pub use registry::serve_registry_on;

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
    Serve(serve::ServeArgs),
    /// Shows a signed application travel portal -> gateway -> provider -> back.
    Demo,
    /// Runs a simulated provider system on its request stream.
    Provider(provider::ProviderArgs),
    /// Signs and sends an envelope: Submit for applications, Call for lookups.
    Send(send::SendArgs),
    /// Shows one application's status (Gateway.GetStatus).
    Status {
        message_id: String,
        #[command(flatten)]
        reader: ReaderArgs,
    },
    /// Shows an applicant's «История получения услуг» (Gateway.History).
    History {
        iin: String,
        #[command(flatten)]
        reader: ReaderArgs,
    },
    /// Runs one registry alone as a gRPC server (shep.registry.v1.Registry,
    /// and RegistryAdmin for its audit and fixtures).
    Registry(registry::RegistryArgs),
    /// Shows records of the synthetic population (with fixtures) without a
    /// server: what the registries would answer.
    Population {
        #[command(subcommand)]
        command: population::PopulationCommand,
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
    /// Loads the gateway with envelopes signed as it runs (any length) and
    /// reports latency percentiles and throughput; or compares two JSON reports.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
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
        admin: admin::AdminArgs,
    },
    /// Shows or moves the simulated clock that deadlines, overdue marks and
    /// leases count in: globally, or for one test session.
    Clock {
        #[command(subcommand)]
        command: admin::ClockCommand,
        /// This test session's clock (`x-shep-session`) instead of the global one.
        #[arg(long, global = true)]
        session: Option<String>,
        #[command(flatten)]
        admin: admin::AdminArgs,
    },
    /// Plays a flow of the seed regulations step by step on a simulated
    /// clock (the gateway in-process), narrated with the regulations' times.
    Flow {
        #[command(subcommand)]
        command: flow::FlowCommand,
    },
    /// Grades a participant system against the ШЭП contract and the
    /// regulations: `shep conformance provider --id ID` (docs/CONFORMANCE.md).
    Conformance {
        #[command(subcommand)]
        command: conformance::ConformanceCommand,
    },
    /// Adds, lists and removes the toolkit's faults (Admin AddFault,
    /// ListFaults, DeleteFault), e.g. `shep faults add --provider ID --effect drop-ack --times 1`.
    Faults {
        #[command(subcommand)]
        command: admin::FaultsCommand,
    },
    /// Binds test sessions to traffic, for systems that cannot send
    /// `x-shep-session` (Admin BindSession, ListSessionBindings,
    /// UnbindSession), e.g. `shep bindings add --session ci-7 --system pep`.
    Bindings {
        #[command(subcommand)]
        command: bindings::BindingsCommand,
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

const DEFAULT_GATEWAY: &str = "https://127.0.0.1:7700";

/// How `shep errors` prints the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ErrorsFormat {
    /// The Markdown table of docs/ERRORS.md.
    Markdown,
    /// A JSON array, one object per reason.
    Json,
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
    /// Checks the hash chain and reports the first broken record; with
    /// `--nats`, replays the cluster's JetStream stream instead and reports
    /// the first message a node could not apply.
    Verify {
        /// The data directory of `shep serve`.
        #[arg(long, default_value = ".shep")]
        data_dir: PathBuf,
        /// The NATS server(s) of a cluster (`[cluster] nats`).
        #[arg(long, value_name = "URL")]
        nats: Option<String>,
        /// The cluster's `cluster.prefix`.
        #[arg(long, default_value = "shep")]
        prefix: String,
    },
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

/// Who reads statuses: a consumer system, by its transport certificate.
#[derive(Debug, clap::Args)]
struct ReaderArgs {
    #[arg(long, default_value = DEFAULT_GATEWAY)]
    gateway: String,
    /// The data directory of `shep serve`, for its НУЦ and the system's
    /// transport certificate.
    #[arg(long, default_value = ".shep")]
    data_dir: PathBuf,
    /// The consumer system to read as (its reads are in the access audit).
    #[arg(long = "as", default_value = "pep")]
    system: String,
}

impl ReaderArgs {
    async fn connect(&self) -> anyhow::Result<GrpcChannel> {
        connect_as(&self.gateway, &self.data_dir, Some(&self.system)).await
    }
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

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // `shep serve` installs the subscriber once its configuration is read:
    // it may add the OTLP exporter's layer, which a layer swapped in later
    // (`reload`) would hide from the `traceparent` code's downcast.
    if !matches!(cli.command, Command::Serve(_)) {
        crate::logging::install(None);
    }
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Demo => demo::run().await,
        Command::Provider(args) => provider::run(args).await,
        Command::Send(args) => send::run(args).await,
        Command::Status { message_id, reader } => send::status(message_id, &reader).await,
        Command::History {
            iin: subject,
            reader,
        } => send::history(&subject, &reader).await,
        Command::Registry(args) => registry::run(args).await,
        Command::Population { command } => population::run(command),
        Command::Certs { command } => certs::run(command).await,
        Command::Bench { command } => bench::run(command).await,
        Command::DeadLetters {
            requeue,
            provider,
            admin,
        } => admin::dead_letters(requeue, provider, admin).await,
        Command::Clock {
            command,
            session,
            admin,
        } => admin::clock(command, session, admin).await,
        Command::Faults { command } => admin::faults(command).await,
        Command::Conformance { command } => conformance::run(command).await,
        Command::Bindings { command } => bindings::bindings(command).await,
        Command::Flow { command } => flow::run(command).await,
        Command::Journal {
            command:
                JournalCommand::Verify {
                    nats: Some(url),
                    prefix,
                    ..
                },
        } => {
            let options = shep_gateway::storage::jetstream::JetStreamOptions {
                url: url.clone(),
                prefix,
                ..Default::default()
            };
            let verified = shep_gateway::storage::jetstream::verify(&options)
                .await
                .with_context(|| format!("the stream at `{url}`"))?;
            println!(
                "{url}: {} messages replayed; {} applications, {} status events; queues: {} waiting, {} leased, {} dead letters",
                verified.last_sequence,
                verified.applications,
                verified.events,
                verified.queued,
                verified.leased,
                verified.dead
            );
            Ok(())
        }
        Command::Journal {
            command: JournalCommand::Verify { data_dir, .. },
        } => {
            let path = DataDir(data_dir).journal();
            match shep_gateway::storage::embedded::verify_file(&path) {
                Ok(records) => {
                    println!("{}: {records} records, chain intact", path.display());
                    Ok(())
                }
                Err(error) => Err(anyhow::Error::new(error).context(path.display().to_string())),
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
                ErrorsFormat::Markdown => print!("{}", shep_gateway::error::catalogue_markdown()),
                ErrorsFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&shep_gateway::error::catalogue_json())?
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

/// Connects to a gRPC endpoint as nobody in particular (the admin API,
/// the НУЦ): over TLS for `https://`, trusting the test НУЦ in `.shep`.
async fn connect(url: &str) -> anyhow::Result<GrpcChannel> {
    connect_as(url, std::path::Path::new(".shep"), None).await
}

/// Connects to the gateway at `url`. Over `https://` it trusts the test НУЦ
/// of `data_dir` (`nuc/root.cert.pem`) and, as participant `system`,
/// presents that system's transport certificate (`systems/<id>.*.pem`,
/// which `shep serve` issues at first start).
async fn connect_as(
    url: &str,
    data_dir: &std::path::Path,
    system: Option<&str>,
) -> anyhow::Result<GrpcChannel> {
    let mut endpoint = GrpcChannel::from_shared(url.to_owned())
        .with_context(|| format!("bad gateway url `{url}`"))?
        .connect_timeout(Duration::from_secs(5));
    if url.starts_with("https://") {
        let dir = shep_gateway::server::DataDir(data_dir.to_owned());
        let read = |path: &std::path::Path| {
            std::fs::read(path).with_context(|| {
                format!(
                    "reading `{}` (the data directory of `shep serve`: --data-dir)",
                    path.display()
                )
            })
        };
        let mut tls = tonic::transport::ClientTlsConfig::new().ca_certificate(
            tonic::transport::Certificate::from_pem(read(&dir.root_certificate())?),
        );
        if let Some(system) = system {
            let (key, cert) = dir.system_identity(system);
            tls = tls.identity(tonic::transport::Identity::from_pem(
                read(&cert)?,
                read(&key)?,
            ));
        }
        endpoint = endpoint
            .tls_config(tls)
            .context("configuring TLS to the gateway")?;
    }
    endpoint.connect().await.with_context(|| {
        format!(
            "connecting to `{url}` (is `shep serve` running? one started with `--insecure` speaks plaintext: `--gateway http://…`)"
        )
    })
}

/// A gRPC error as a person reads it (the client library's wording).
pub(crate) use crate::client::describe;

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
