//! `shep conformance example-consumer`: the reference consumer system
//! ([`crate::conformance::example_consumer`]) as a command, one workflow per
//! run, so the consumer kit can grade it like a team's own system.

use std::path::PathBuf;
use std::time::Duration;

use shep_gateway::server::DEMO_APPLICANT_IIN;
use shep_proto::envelope::v1::Channel;

use super::{DEFAULT_GATEWAY, connect_as, signer_from};
use crate::client::Participant;
use crate::conformance::example_consumer::{ConsumerMisbehaviour, ExampleConsumer};

#[derive(Debug, clap::Args)]
pub(super) struct ExampleConsumerArgs {
    #[arg(long, default_value = DEFAULT_GATEWAY)]
    gateway: String,
    /// The data directory of `shep serve`: the НУЦ, the system's transport
    /// certificate and the demo identities that sign.
    #[arg(long, default_value = ".shep")]
    data_dir: PathBuf,
    /// The consumer system: `pep` (the portal, signed by the applicant),
    /// `is-con` (a service centre, signed by its operator) or another one
    /// (signed by the operator on the system channel).
    #[arg(long = "id", default_value = "pep")]
    system: String,
    /// The lookup service (`Gateway.Call`).
    #[arg(long, default_value = "GbdflInfoByIin_v1")]
    lookup: String,
    /// Whom the lookup is about (IIN).
    #[arg(long, default_value = DEMO_APPLICANT_IIN)]
    lookup_subject: String,
    /// The application service (`Gateway.Submit`).
    #[arg(long, default_value = "guardianship-certificate-esil")]
    service: String,
    /// The applicant (IIN).
    #[arg(long, default_value = DEMO_APPLICANT_IIN)]
    subject: String,
    /// Skips the lookup.
    #[arg(long)]
    no_lookup: bool,
    /// Skips the application.
    #[arg(long)]
    no_application: bool,
    /// Makes a deliberate mistake, to test the kit's verdicts.
    #[arg(long, value_enum, hide = true)]
    misbehave: Option<ConsumerMisbehaviour>,
    /// How long the application may take to reach a final status, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

/// Runs `shep conformance example-consumer`.
pub(super) async fn run(args: ExampleConsumerArgs) -> anyhow::Result<()> {
    // Who signs, as `shep send` chooses: the applicant on the portal, a ЦОН
    // operator at the centre, the operator for any other system.
    let (identity, channel) = match args.system.as_str() {
        "pep" => ("applicant", Channel::Portal),
        "is-con" => ("operator", Channel::ServiceCentre),
        _ => ("operator", Channel::System),
    };
    let signer = signer_from(None, None, &args.data_dir, identity)?;
    let consumer = ExampleConsumer {
        gateway: connect_as(&args.gateway, &args.data_dir, Some(&args.system)).await?,
        participant: Participant::new(&args.system, channel, signer),
        lookup: (!args.no_lookup).then(|| (args.lookup.clone(), args.lookup_subject.clone())),
        application: (!args.no_application).then(|| (args.service.clone(), args.subject.clone())),
        misbehave: args.misbehave,
        timeout: Duration::from_secs(args.timeout),
    };
    consumer.run(|line| println!("{line}")).await?;
    Ok(())
}
