//! `shep bench`: the load generator, report comparison, the echo backend
//! and the h2load frame.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use shep_gateway::server::DEMO_APPLICANT_IIN;
use shep_nuc::ca::Signer;
use shep_proto::envelope::v1::{Channel, SignedEnvelope};
use tokio_stream::StreamExt;
use tonic::transport::Channel as GrpcChannel;

use super::{SigningArgs, certs, connect, describe, signer_from};
use crate::client::{Participant, iin};
use crate::loadgen::{self, Mode, Report, Scenario, Settings};

/// Whom the lookups are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Subjects {
    /// The demo applicant, looking themself up on the portal (one ГБД ФЛ
    /// record, answered from the fixtures).
    Applicant,
    /// People drawn at random from the synthetic population (the gateway's
    /// default `[population]`: every valid IIN, 5% absent, which are
    /// skipped), looked up by the demo ЦОН operator at the service centre:
    /// the registry path users hit.
    Population,
}

#[derive(Debug, clap::Args)]
pub(super) struct BenchRunArgs {
    #[arg(long, value_enum, default_value = "lookup")]
    scenario: Scenario,
    /// Lookups: whom they are about.
    #[arg(long, value_enum, default_value = "applicant")]
    subjects: Subjects,
    #[arg(long, value_enum, default_value = "closed")]
    mode: Mode,
    /// `lean`: pre-encoded frames over HTTP/2 (h2), cheap enough to share
    /// the machine with the gateway; `tonic`: the generated gRPC client.
    #[arg(long, value_enum, default_value = "lean")]
    client: loadgen::Client,
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
    /// How long to run, in seconds: any length, envelopes are signed as it
    /// goes.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Lookups: the envelopes sent again and again in turn (default 2 048;
    /// the gateway verifies each one every time), re-signed in the background.
    /// Submissions: each is new and sent once, and the run ends after this
    /// many (default: when `--seconds` are up).
    #[arg(long)]
    requests: Option<usize>,
    /// Submissions: signed ahead of the senders by background threads, up
    /// to this many waiting.
    #[arg(long, default_value_t = 4096)]
    sign_ahead: usize,
    /// Submissions: threads signing them (one signs thousands a second with
    /// Ed25519; RSA-2048 may need more).
    #[arg(long, default_value_t = 1)]
    signers: usize,
    /// Lookups: each envelope of the pool is signed anew this often, well
    /// within the gateway's `checks.message_date_skew_secs`.
    #[arg(long, default_value_t = 60.0)]
    resign_secs: f64,
    /// Prints the numbers of each interval of this many seconds (ok,
    /// errors, p50, p99) instead of a count each second.
    #[arg(long)]
    interval: Option<f64>,
    /// Writes each interval as a JSON line here (needs `--interval`).
    #[arg(long, requires = "interval")]
    interval_log: Option<PathBuf>,
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
pub(super) struct BenchIdentityArgs {
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

    /// The applicant on the portal, signing as [`Self::signer`].
    async fn portal_applicant(&self, signing: &SigningArgs) -> anyhow::Result<Participant> {
        Ok(Participant::new(
            "pep",
            Channel::Portal,
            self.signer(signing).await?,
        ))
    }
}

#[derive(Debug, Subcommand)]
pub(super) enum BenchCommand {
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
    /// The same signed lookup over ШЭП's SOAP (`/bip-sync/`) and over gRPC,
    /// closed loop, one after the other against one plaintext gateway.
    Soap {
        /// Workers, each with its own HTTP/1.1 connection (SOAP) or stream (gRPC).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds per row.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[command(flatten)]
        identity: BenchIdentityArgs,
        #[command(flatten)]
        signing: SigningArgs,
    },
    /// Times the signature check of one signed lookup on one thread, as the
    /// gateway verifies it (chain cached, key decoded once per certificate):
    /// the cost of one verification, for the concurrency-1 comparison.
    Verify {
        /// How long to verify, again and again.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        #[command(flatten)]
        identity: BenchIdentityArgs,
        #[command(flatten)]
        signing: SigningArgs,
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

/// The applicant's lookup of themself in ГБД ФЛ, signed: what h2load sends
/// and what `shep bench verify` checks.
fn demo_lookup(applicant: &Participant) -> anyhow::Result<SignedEnvelope> {
    applicant.seal(&applicant.request("GbdflInfoByIin_v1", iin(DEMO_APPLICANT_IIN)))
}

/// A present person of `population`, drawn at random.
fn population_subject(population: &shep_registries::population::Population) -> String {
    let slots = population
        .size()
        .unwrap_or(shep_registries::population::MAX_SIZE);
    loop {
        let slot = rand::random::<u64>() % slots;
        if let Some(iin) = population.iin_at(slot)
            && !population.is_absent(&iin)
        {
            return iin;
        }
    }
}

/// Runs `shep bench`.
pub(super) async fn run(command: BenchCommand) -> anyhow::Result<()> {
    let run = match command {
        BenchCommand::Echo { listen } => {
            let listener = tokio::net::TcpListener::bind(listen).await?;
            eprintln!("echo backend (Gateway.Call) on {listen}");
            return loadgen::serve_echo(listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        }
        BenchCommand::Verify {
            seconds,
            identity,
            signing,
        } => {
            let envelope = demo_lookup(&identity.portal_applicant(&signing).await?)?;
            let anchors = crate::client::TrustAnchors::from_nuc_dir(&signing.data_dir.join("nuc"))?;
            // The first check builds the chain cache, as the gateway's first lookup does.
            anchors.verify_envelope(&envelope)?;
            let (mut verified, started) = (0u64, std::time::Instant::now());
            let until = std::time::Duration::from_secs_f64(seconds.max(0.1));
            while started.elapsed() < until {
                for _ in 0..64 {
                    anchors.verify_envelope(&envelope)?;
                }
                verified += 64;
            }
            let each = started.elapsed().as_secs_f64() * 1e6 / verified as f64;
            println!(
                "one signature verification: {each:.1} µs ({verified} in {:.1} s, one thread)",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        BenchCommand::Frame {
            out,
            identity,
            signing,
        } => {
            let envelope = demo_lookup(&identity.portal_applicant(&signing).await?)?;
            let frame = loadgen::grpc_frame(&envelope);
            std::fs::write(&out, &frame).with_context(|| format!("writing `{}`", out.display()))?;
            eprintln!(
                "wrote a {}-byte gRPC frame to `{}`",
                frame.len(),
                out.display()
            );
            return Ok(());
        }
        BenchCommand::Soap {
            concurrency,
            seconds,
            identity,
            signing,
        } => {
            let applicant = identity.portal_applicant(&signing).await?;
            return super::bench_soap::run(&signing.gateway, &applicant, concurrency, seconds)
                .await;
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
        subjects,
        mode,
        client,
        concurrency,
        connections,
        threads,
        rate,
        seconds,
        requests,
        sign_ahead,
        signers,
        resign_secs,
        interval,
        interval_log,
        json,
        identity,
        signing,
    } = run;
    // The load generator measures routing over plaintext HTTP/2, as its
    // peers (nginx, h2load) do; it does not present transport certificates.
    anyhow::ensure!(
        !signing.gateway.starts_with("https://"),
        "`shep bench` speaks plaintext HTTP/2: start the gateway with `shep serve --insecure` (or `[auth] participants = \"off\"`) and pass `--gateway http://…`"
    );
    anyhow::ensure!(seconds > 0, "`--seconds` must be > 0");
    anyhow::ensure!(rate > 0.0, "`--rate` must be > 0");
    anyhow::ensure!(
        sign_ahead > 0 && signers > 0 && requests != Some(0),
        "`--sign-ahead`, `--signers` and `--requests` must be > 0"
    );
    anyhow::ensure!(resign_secs > 0.0, "`--resign-secs` must be > 0");
    anyhow::ensure!(
        interval.is_none_or(|every| every > 0.0),
        "`--interval` must be > 0"
    );
    anyhow::ensure!(
        concurrency > 0 && connections > 0 && threads > 0,
        "`--concurrency`, `--connections` and `--threads` must be > 0"
    );
    let (sender, population) = match subjects {
        Subjects::Applicant => {
            let signer = identity.signer(&signing).await?;
            (Participant::new("pep", Channel::Portal, signer), None)
        }
        Subjects::Population => {
            anyhow::ensure!(
                scenario == Scenario::Lookup && identity.algorithm.is_none(),
                "`--subjects population` is for lookups, signed by the demo ЦОН operator (or `--key`/`--cert`), without `--algorithm`"
            );
            let signer = signer_from(
                signing.key.clone(),
                signing.cert.clone(),
                &signing.data_dir,
                "operator",
            )?;
            let config = shep_registries::data::PopulationConfig::default();
            let population = shep_registries::population::Population::new(
                config.seed,
                config.size,
                config.absent_share,
            )?;
            (
                Participant::new("is-con", Channel::ServiceCentre, signer),
                Some(Arc::new(population)),
            )
        }
    };
    let algorithm = format!(
        "{:?}",
        shep_proto::envelope::v1::SignatureAlgorithm::try_from(
            sender.signer.sign(b"probe")?.algorithm
        )
        .unwrap_or_default()
    );
    let service = match scenario {
        Scenario::Lookup => "GbdflInfoByIin_v1",
        Scenario::Submit => "guardianship-certificate-esil",
    };
    // Dated and signed when called, on the signing threads; each lookup of
    // the population is about someone drawn anew.
    let seal = move || {
        let subject = match &population {
            Some(population) => population_subject(population),
            None => DEMO_APPLICANT_IIN.to_owned(),
        };
        sender.seal(&sender.request(service, iin(&subject)))
    };
    let mut intervals = match &interval_log {
        Some(path) => Some(
            std::fs::File::create(path)
                .with_context(|| format!("creating `{}`", path.display()))?,
        ),
        None => None,
    };
    let acked = Arc::new(AtomicU64::new(0));
    let acker = if scenario == Scenario::Submit {
        let channel = connect(&signing.gateway).await?;
        Some(tokio::spawn(loadgen_ack_all(
            channel,
            "arm-rshep-sko-esil-edu".to_owned(),
            acked.clone(),
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
        interval: interval.map(Duration::from_secs_f64),
        signing: loadgen::Signing {
            // Enough that no two in flight are alike.
            pool: requests.unwrap_or(2048),
            resign: Duration::from_secs_f64(resign_secs),
            limit: requests.map(|n| n as u64),
            ahead: sign_ahead,
            signers,
        },
    };
    eprintln!(
        "signing {} ({}) ...",
        match scenario {
            Scenario::Lookup => format!(
                "a pool of {} lookups, each again every {resign_secs} s",
                settings.signing.pool
            ),
            Scenario::Submit =>
                format!("submissions on {signers} thread(s), up to {sign_ahead} ahead"),
        },
        settings.algorithm
    );
    let report = loadgen::run(&signing.gateway, &settings, seal, move |tick| {
        progress(&tick, intervals.as_mut());
    })
    .await;
    let mut report = report?;
    if let Some(rate) = report.signed_per_second {
        eprintln!("  signed {rate:.0} envelopes/s on one thread before the run");
    }
    if let Some(acker) = acker {
        // Deliveries trail receipts: count until nothing more arrives for a
        // second (or every receipted one is acknowledged here).
        let mut last = acked.load(Ordering::Relaxed);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = acked.load(Ordering::Relaxed);
            if now == last || now >= report.ok {
                break;
            }
            last = now;
        }
        acker.abort();
        report.acknowledged = Some(acked.load(Ordering::Relaxed));
        eprintln!(
            "  acknowledged by the provider: {}",
            acked.load(Ordering::Relaxed)
        );
    }
    print!("{}", loadgen::table(&report));
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing `{}`", path.display()))?;
        eprintln!("report written to `{}`", path.display());
    }
    Ok(())
}

/// Prints a tick, and writes its interval as a JSON line to `log`.
fn progress(tick: &loadgen::Tick, log: Option<&mut std::fs::File>) {
    use std::io::Write as _;
    let elapsed = tick.elapsed.as_secs_f64();
    let Some(interval) = &tick.interval else {
        eprintln!("  {elapsed:>4.0} s  ok {}  errors {}", tick.ok, tick.errors);
        return;
    };
    eprintln!(
        "  {elapsed:>6.0} s  ok {:.0}/s  errors {}  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        interval.ok as f64 / interval.seconds.max(f64::EPSILON),
        interval.errors,
        interval.p50_us as f64 / 1000.0,
        interval.p99_us as f64 / 1000.0,
        interval.max_us as f64 / 1000.0,
    );
    if let Some(log) = log {
        // Written whole and at once, so a reader (the soak) sees every line
        // as soon as its interval ends.
        let line = serde_json::to_string(interval).map(|json| json + "\n");
        if let Err(error) = line
            .map_err(std::io::Error::from)
            .and_then(|line| log.write_all(line.as_bytes()))
        {
            eprintln!("  writing the interval log failed: {error}");
        }
    }
}

/// Acknowledges everything delivered to `provider`, so a submit load does
/// not pile up in its queue.
async fn loadgen_ack_all(
    channel: GrpcChannel,
    provider: String,
    acked: Arc<AtomicU64>,
) -> anyhow::Result<()> {
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
            acked.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}
