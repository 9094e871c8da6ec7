//! `shep provider`: a simulated provider system on its request stream,
//! playing a script (docs/SCRIPTS.md) or one of the built-in rules.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shep_gateway::server::DataDir;
use shep_proto::envelope::v1::Channel;
use tokio::sync::mpsc;

use super::{SigningArgs, connect_as};
use crate::client::{Participant, ProviderStep, TrustAnchors};
use crate::script::ProviderRule;
use crate::script::{RunOptions, Script, run_script};

#[derive(Debug, clap::Args)]
pub(super) struct ProviderArgs {
    /// The provider system id in the routing table.
    #[arg(long, default_value = "arm-rshep-sko-esil-edu")]
    id: String,
    /// A built-in script: complete, refuse or reject every request.
    #[arg(
        long,
        value_enum,
        default_value = "complete",
        conflicts_with = "script"
    )]
    rule: ProviderRule,
    /// Pause before each status report of `--rule`, in milliseconds.
    #[arg(long, default_value_t = 500, conflicts_with = "script")]
    delay_ms: u64,
    /// A provider script (TOML, docs/SCRIPTS.md) instead of `--rule`.
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// Divide every scripted delay by this: at 60 a `15m` step waits 15 s.
    #[arg(long, default_value_t = 1.0)]
    time_factor: f64,
    /// Check each delivered envelope's signature against the НУЦ of
    /// `--data-dir`; one that fails is not accepted (resend asked).
    #[arg(long)]
    verify: bool,
    /// Breaks the contract on purpose, to see the conformance kit fail a
    /// provider (docs/CONFORMANCE.md).
    #[arg(long, value_enum, hide = true)]
    misbehave: Option<crate::script::Misbehaviour>,
    /// Only load and validate the script, then exit.
    #[arg(long, requires = "script")]
    check: bool,
    #[command(flatten)]
    signing: SigningArgs,
}

/// Runs `shep provider`.
pub(super) async fn run(args: ProviderArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.time_factor.is_finite() && args.time_factor > 0.0,
        "--time-factor must be above zero, not {}",
        args.time_factor
    );
    let (script, what) = match &args.script {
        Some(path) => (Script::load(path)?, format!("script `{}`", path.display())),
        None => (
            args.rule.script(Duration::from_millis(args.delay_ms)),
            format!("{:?}", args.rule),
        ),
    };
    if args.check {
        let services: Vec<&str> = script.services.keys().map(String::as_str).collect();
        println!("{what}: ok, services: {}", services.join(", "));
        return Ok(());
    }
    let verify = if args.verify {
        Some(TrustAnchors::from_nuc_dir(
            &DataDir(args.signing.data_dir.clone()).nuc(),
        )?)
    } else {
        None
    };
    let signer = args.signing.signer(&format!("provider-{}", args.id))?;
    let participant = Participant::new(&args.id, Channel::ProviderDesk, signer);
    println!(
        "simulated provider `{}` ({what}, time factor {}) on {}",
        args.id, args.time_factor, args.signing.gateway
    );
    let channel = connect_as(
        &args.signing.gateway,
        &args.signing.data_dir,
        Some(&args.id),
    )
    .await?;
    // Each step on a line of its own, as it happens.
    let (steps_tx, mut steps) = mpsc::unbounded_channel::<ProviderStep>();
    let printer = tokio::spawn(async move {
        while let Some(step) = steps.recv().await {
            if step.message_id.is_empty() {
                println!("{}", step.what);
            } else {
                println!("{} {}: {}", step.message_id, step.service_id, step.what);
            }
        }
    });
    let played = run_script(
        channel,
        participant,
        Arc::new(script),
        RunOptions {
            time_factor: args.time_factor,
            verify,
            steps: Some(steps_tx),
            misbehave: args.misbehave,
            ..RunOptions::default()
        },
    )
    .await;
    let _ = printer.await;
    played
}
