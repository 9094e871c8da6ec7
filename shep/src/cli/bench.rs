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
use shep_proto::envelope::v1::Channel;
use tokio_stream::StreamExt;
use tonic::transport::Channel as GrpcChannel;

use super::{SigningArgs, certs, connect, describe, signer_from};
use crate::client::{Participant, iin};
use crate::loadgen::{self, Mode, Report, Scenario, Settings};

#[derive(Debug, clap::Args)]
pub(super) struct BenchRunArgs {
    #[arg(long, value_enum, default_value = "lookup")]
    scenario: Scenario,
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
        BenchCommand::Frame {
            out,
            identity,
            signing,
        } => {
            let applicant =
                Participant::new("pep", Channel::Portal, identity.signer(&signing).await?);
            let envelope =
                applicant.seal(&applicant.request("GbdflInfoByIin_v1", iin(DEMO_APPLICANT_IIN)))?;
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
        Scenario::Lookup => ("GbdflInfoByIin_v1", DEMO_APPLICANT_IIN),
        Scenario::Submit => ("guardianship-certificate-esil", DEMO_APPLICANT_IIN),
    };
    eprintln!("signing {count} envelopes ({algorithm}) ...");
    let envelopes = (0..count)
        .map(|_| applicant.seal(&applicant.request(service, iin(subject))))
        .collect::<anyhow::Result<Vec<_>>>()?;
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
    let mut report = report?;
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
