//! `shep provider`: a simulated provider system on its request stream.

use std::time::Duration;

use shep_proto::envelope::v1::Channel;

use super::{SigningArgs, connect_as};
use crate::client::{Participant, ProviderRule, run_provider};

#[derive(Debug, clap::Args)]
pub(super) struct ProviderArgs {
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

/// Runs `shep provider`.
pub(super) async fn run(args: ProviderArgs) -> anyhow::Result<()> {
    let signer = args.signing.signer(&format!("provider-{}", args.id))?;
    let participant = Participant::new(&args.id, Channel::ProviderDesk, signer);
    println!(
        "simulated provider `{}` ({:?}) on {}",
        args.id, args.rule, args.signing.gateway
    );
    let channel = connect_as(
        &args.signing.gateway,
        &args.signing.data_dir,
        Some(&args.id),
    )
    .await?;
    run_provider(
        channel,
        participant,
        args.rule,
        Duration::from_millis(args.delay_ms),
        None,
    )
    .await
}
