//! `shep conformance`: the conformance kits from the command line
//! (docs/CONFORMANCE.md). Exit code 1 when a case fails, so a team's CI can
//! gate on it; `--junit FILE` writes the verdicts for its test reporter.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use shep_gateway::server::{DEMO_APPLICANT_IIN, DataDir};
use shep_proto::admin::v1::ListRoutesRequest;
use shep_proto::envelope::v1::Channel;

use super::admin::AdminArgs;
use super::connect_as;
use crate::client::{Participant, TrustAnchors, iin};
use crate::conformance::Report;
use crate::conformance::consumer::{ConsumerKit, Options as ConsumerOptions, PlayedProvider};
use crate::conformance::provider::{Admin, CASES, Options, ProviderKit};

#[derive(Debug, clap::Subcommand)]
pub(super) enum ConformanceCommand {
    /// Grades a provider system connected to the gateway (Provider.Subscribe):
    /// acknowledgements, redelivery, duplicates, corrupted envelopes,
    /// bursts, status order, signatures and deadlines.
    Provider(ProviderKitArgs),
    /// Grades a consumer system as it ships: runs its command once per case
    /// while the gateway misbehaves, then reads what it did from the
    /// exchange journal (no header or change needed in the consumer).
    Consumer(ConsumerKitArgs),
    /// Lists the cases of both kits with the rule each comes from.
    Cases,
    /// Runs the reference consumer system once: a lookup, then an
    /// application followed to its final status (the pattern the consumer
    /// kit passes).
    ExampleConsumer(super::example_consumer::ExampleConsumerArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct ConsumerKitArgs {
    /// The consumer system graded (its id in the routing table).
    #[arg(long, default_value = "pep")]
    id: String,
    /// The consumer's command, run with `sh -c` once per case (it gets
    /// `SHEP_CONFORMANCE_CASE` and `SHEP_CONFORMANCE_SESSION` in its
    /// environment, and needs neither).
    #[arg(long, value_name = "COMMAND")]
    run: String,
    /// A provider the kit plays while the consumer runs (repeatable; default:
    /// every provider of the services the consumer may use).
    #[arg(long = "provider", value_name = "ID")]
    providers: Vec<String>,
    /// Only this case (repeatable; `shep conformance cases` lists them).
    #[arg(long = "case", value_name = "NAME")]
    cases: Vec<String>,
    /// The longest the command may run in one case, in seconds.
    #[arg(long, default_value_t = 60)]
    case_timeout: u64,
    /// Writes the verdicts as JUnit XML here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Shows the evidence of passed cases too.
    #[arg(long, short)]
    verbose: bool,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Debug, clap::Args)]
pub(super) struct ProviderKitArgs {
    /// The provider system graded (its id in the routing table).
    #[arg(long)]
    id: String,
    /// An application service routed to it, open to the portal (default:
    /// the first such service in the routing table).
    #[arg(long)]
    service: Option<String>,
    /// The applicant (IIN) the applications are about: one whose address the
    /// service's route serves.
    #[arg(long, default_value = DEMO_APPLICANT_IIN)]
    subject: String,
    /// Only this case (repeatable; `shep conformance cases` lists them).
    #[arg(long = "case", value_name = "NAME")]
    cases: Vec<String>,
    /// The longest a case waits for the provider, in seconds.
    #[arg(long, default_value_t = 30)]
    case_timeout: u64,
    /// Applications in the `burst` case: more than the provider's max_in_flight.
    #[arg(long, default_value_t = 12)]
    burst: usize,
    /// In the `deadline` case the service's term passes in this many seconds.
    #[arg(long, default_value_t = 6.0)]
    deadline_in: f64,
    /// Writes the verdicts as JUnit XML here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Shows the evidence of passed cases too.
    #[arg(long, short)]
    verbose: bool,
    #[command(flatten)]
    admin: AdminArgs,
}

/// Runs `shep conformance`.
pub(super) async fn run(command: ConformanceCommand) -> anyhow::Result<()> {
    match command {
        ConformanceCommand::Cases => {
            let mut text = String::new();
            for (kit, cases) in [
                ("provider", CASES),
                ("consumer", crate::conformance::consumer::CASES),
            ] {
                text.push_str(&format!("shep conformance {kit}:\n"));
                for case in cases {
                    text.push_str(&format!(
                        "  {:<21} {}\n  {:<21} rule: {}\n",
                        case.name, case.title, "", case.rule
                    ));
                }
            }
            out(&text)
        }
        ConformanceCommand::ExampleConsumer(args) => super::example_consumer::run(args).await,
        ConformanceCommand::Consumer(args) => {
            let kit = args.kit().await?;
            out(&format!(
                "grading consumer `{}`: `{}` runs once per case; the kit plays {}\n",
                kit.consumer_id,
                kit.command,
                kit.providers
                    .iter()
                    .map(|played| played.provider_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))?;
            let report = kit.run().await?;
            finish(&report, args.junit.as_deref(), args.verbose)
        }
        ConformanceCommand::Provider(args) => {
            let report = provider(args.kit().await?).await?;
            finish(&report, args.junit.as_deref(), args.verbose)
        }
    }
}

async fn provider(kit: ProviderKit) -> anyhow::Result<Report> {
    out(&format!(
        "grading provider `{}` with service `{}`; keep it connected to the gateway\n",
        kit.provider_id, kit.service_id
    ))?;
    kit.run().await
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an
/// error of the kit.
fn out(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Prints the report, writes its JUnit XML, and fails when a case failed.
fn finish(report: &Report, junit: Option<&std::path::Path>, verbose: bool) -> anyhow::Result<()> {
    out(&report.text(verbose))?;
    if let Some(path) = junit {
        std::fs::write(path, report.junit())
            .with_context(|| format!("writing `{}`", path.display()))?;
        out(&format!("JUnit XML: {}\n", path.display()))?;
    }
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}

impl ProviderKitArgs {
    async fn kit(&self) -> anyhow::Result<ProviderKit> {
        let dir = DataDir(self.admin.data_dir.clone());
        let admin = Admin {
            channel: connect_as(&self.admin.gateway, &self.admin.data_dir, None).await?,
            token: Some(self.admin.token()?),
        };
        let service_id = match &self.service {
            Some(service) => service.clone(),
            None => {
                let routes = admin
                    .client()
                    .list_routes(admin.request(ListRoutesRequest {})?)
                    .await
                    .map_err(super::describe)?
                    .into_inner()
                    .routes;
                routes
                    .into_iter()
                    .find(|route| {
                        route.kind == "application"
                            && route.channels.contains(&(Channel::Portal as i32))
                            && (route.default_provider == self.id
                                || route.providers_by_region.values().any(|id| *id == self.id))
                    })
                    .map(|route| route.service_id)
                    .with_context(|| {
                        format!(
                            "no application service open to the portal is routed to `{}`: name one with --service",
                            self.id
                        )
                    })?
            }
        };
        let (key, cert) = dir.identity("applicant");
        let signer = shep_nuc::ca::Signer::from_files(&key, &cert).with_context(|| {
            format!(
                "loading the demo applicant's key `{}` (run from the directory of `shep serve`, or pass --data-dir)",
                key.display()
            )
        })?;
        Ok(ProviderKit {
            gateway: connect_as(&self.admin.gateway, &self.admin.data_dir, Some("pep")).await?,
            admin,
            applicant: Participant::new("pep", Channel::Portal, signer),
            anchors: TrustAnchors::from_nuc_dir(&dir.nuc())?,
            provider_id: self.id.clone(),
            service_id,
            subject: iin(&self.subject),
            options: Options {
                case_timeout: Duration::from_secs(self.case_timeout.max(1)),
                burst: self.burst,
                deadline_in: Duration::from_secs_f64(self.deadline_in.max(0.5)),
                only: self.cases.clone(),
                ..Options::default()
            },
        })
    }
}

impl ConsumerKitArgs {
    async fn kit(&self) -> anyhow::Result<ConsumerKit> {
        let dir = DataDir(self.admin.data_dir.clone());
        let admin = Admin {
            channel: connect_as(&self.admin.gateway, &self.admin.data_dir, None).await?,
            token: Some(self.admin.token()?),
        };
        let mut providers = self.providers.clone();
        if providers.is_empty() {
            let routes = admin
                .client()
                .list_routes(admin.request(ListRoutesRequest {})?)
                .await
                .map_err(super::describe)?
                .into_inner()
                .routes;
            for route in routes
                .iter()
                .filter(|route| route.senders.contains(&self.id))
            {
                let ids = std::iter::once(&route.default_provider)
                    .chain(route.providers_by_region.values())
                    .filter(|id| !id.is_empty());
                for id in ids {
                    if !providers.contains(id) {
                        providers.push(id.clone());
                    }
                }
            }
        }
        let mut played = Vec::new();
        for id in providers {
            let (key, cert) = dir.identity(&format!("provider-{id}"));
            played.push(PlayedProvider {
                channel: connect_as(&self.admin.gateway, &self.admin.data_dir, Some(&id)).await?,
                provider_id: id,
                key,
                cert,
            });
        }
        Ok(ConsumerKit {
            admin,
            consumer_id: self.id.clone(),
            command: self.run.clone(),
            providers: played,
            options: ConsumerOptions {
                case_timeout: Duration::from_secs(self.case_timeout.max(1)),
                only: self.cases.clone(),
            },
        })
    }
}
