//! `shep dead-letters`, `shep faults`, and the operator's flags shared with `shep certs`:
//! the Admin API from the command line.

use std::path::PathBuf;

use anyhow::Context as _;
use shep_gateway::server::DataDir;
use tonic::Request;

use super::{DEFAULT_GATEWAY, connect_as, describe};

/// Where the gateway is and how to authenticate as its operator.
#[derive(Debug, clap::Args)]
pub(super) struct AdminArgs {
    // Global: `shep clock advance 6wd --gateway URL` reads as well as before the subcommand.
    #[arg(long, global = true, default_value = DEFAULT_GATEWAY)]
    pub(super) gateway: String,
    /// The admin token (default: `SHEP_ADMIN_TOKEN`, else `<data_dir>/admin-token`).
    #[arg(long, global = true)]
    pub(super) token: Option<String>,
    /// The data directory of `shep serve`.
    #[arg(long, global = true, default_value = ".shep")]
    pub(super) data_dir: PathBuf,
}

impl AdminArgs {
    pub(super) fn token(&self) -> anyhow::Result<String> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        if let Ok(token) = std::env::var("SHEP_ADMIN_TOKEN")
            && !token.is_empty()
        {
            return Ok(token);
        }
        let path = DataDir(self.data_dir.clone()).admin_token();
        Ok(std::fs::read_to_string(&path)
            .with_context(|| {
                format!(
                    "reading the admin token `{}` (pass --token, or run from the directory of `shep serve`)",
                    path.display()
                )
            })?
            .trim()
            .to_owned())
    }

    /// The request with the operator's bearer token.
    pub(super) fn authorized<T>(&self, message: T) -> anyhow::Result<Request<T>> {
        let mut request = Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token()?)
                .parse()
                .context("the admin token is not a valid header value")?,
        );
        Ok(request)
    }
}

/// Runs `shep dead-letters`: lists them, or requeues one.
pub(super) async fn dead_letters(
    requeue: Option<String>,
    provider: Option<String>,
    admin: AdminArgs,
) -> anyhow::Result<()> {
    use shep_proto::admin::v1::admin_client::AdminClient;
    use shep_proto::admin::v1::{ListDeadLettersRequest, RequeueDeadLetterRequest};
    let mut client = AdminClient::new(connect_as(&admin.gateway, &admin.data_dir, None).await?);
    if let Some(message_id) = requeue {
        let letter = client
            .requeue_dead_letter(admin.authorized(RequeueDeadLetterRequest { message_id })?)
            .await
            .map_err(describe)?
            .into_inner();
        println!(
            "requeued {} ({}) for `{}`",
            letter.message_id, letter.service_id, letter.provider_id
        );
        return Ok(());
    }
    let letters = client
        .list_dead_letters(admin.authorized(ListDeadLettersRequest {
            provider_id: provider.unwrap_or_default(),
        })?)
        .await
        .map_err(describe)?
        .into_inner()
        .dead_letters;
    println!("{} dead letter(s)", letters.len());
    for letter in letters {
        println!(
            "  {} {} -> {}: {}",
            letter.message_id, letter.service_id, letter.provider_id, letter.reason
        );
    }
    Ok(())
}

/// What `shep clock` does.
#[derive(Debug, Clone, clap::Subcommand)]
pub(super) enum ClockCommand {
    /// Shows the clock.
    Show,
    /// Jumps to a time: RFC 3339 (`2026-12-14T09:00:00+05:00`).
    Set { at: String },
    /// Moves forwards: `90s`, `15m`, `2h`, `3d` (calendar days) or `6wd`
    /// (working days, to the same time of day).
    Advance { by: String },
    /// Runs at this many simulated seconds per real second.
    Factor { factor: f64 },
    /// Back to the real clock (a session: back to the global one).
    Reset,
}

/// Parses `90s`, `15m`, `2h`, `3d` or `6wd` into the request's change.
fn advance(by: &str) -> anyhow::Result<shep_proto::admin::v1::set_clock_request::Change> {
    use shep_proto::admin::v1::set_clock_request::Change;
    let split = by
        .find(|ch: char| !ch.is_ascii_digit())
        .ok_or_else(|| anyhow::anyhow!("`{by}` has no unit (s, m, h, d or wd)"))?;
    let (amount, unit) = by.split_at(split);
    let amount: u64 = amount
        .parse()
        .with_context(|| format!("`{by}` does not start with a whole number"))?;
    let seconds = match unit {
        "wd" => {
            return Ok(Change::AdvanceWorkingDays(
                u32::try_from(amount).context("too many working days")?,
            ));
        }
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        other => anyhow::bail!("unknown unit `{other}` in `{by}` (s, m, h, d or wd)"),
    };
    Ok(Change::AdvanceSeconds(
        amount.checked_mul(seconds).context("too far")?,
    ))
}

/// Runs `shep clock`.
pub(super) async fn clock(
    command: ClockCommand,
    session: Option<String>,
    admin: AdminArgs,
) -> anyhow::Result<()> {
    use shep_proto::admin::v1::admin_client::AdminClient;
    use shep_proto::admin::v1::set_clock_request::Change;
    use shep_proto::admin::v1::{GetClockRequest, SetClockRequest};
    let mut client = AdminClient::new(connect_as(&admin.gateway, &admin.data_dir, None).await?);
    fn in_session<T>(
        mut request: Request<T>,
        session: Option<&String>,
    ) -> anyhow::Result<Request<T>> {
        if let Some(session) = session {
            request.metadata_mut().insert(
                shep_gateway::toolkit::SESSION_HEADER,
                session
                    .parse()
                    .context("the session is not a valid header value")?,
            );
        }
        Ok(request)
    }
    let change = match command {
        ClockCommand::Show => None,
        ClockCommand::Set { at } => {
            let at =
                time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
                    .with_context(|| format!("`{at}` is not an RFC 3339 time"))?;
            Some(Change::Set(prost_types::Timestamp {
                seconds: at.unix_timestamp(),
                nanos: at.nanosecond() as i32,
            }))
        }
        ClockCommand::Advance { by } => Some(advance(&by)?),
        ClockCommand::Factor { factor } => Some(Change::Factor(factor)),
        ClockCommand::Reset => Some(Change::Reset(true)),
    };
    let reading = match change {
        None => {
            client
                .get_clock(in_session(
                    admin.authorized(GetClockRequest {})?,
                    session.as_ref(),
                )?)
                .await
        }
        Some(change) => {
            client
                .set_clock(in_session(
                    admin.authorized(SetClockRequest {
                        change: Some(change),
                    })?,
                    session.as_ref(),
                )?)
                .await
        }
    }
    .map_err(describe)?
    .into_inner();
    let now = reading
        .now
        .and_then(|now| time::OffsetDateTime::from_unix_timestamp(now.seconds).ok())
        .map(shep_gateway::lifecycle::local_time)
        .unwrap_or_default();
    let whose = match (reading.session.as_str(), reading.own) {
        ("", _) => "global clock".to_owned(),
        (session, true) => format!("clock of session `{session}`"),
        (session, false) => format!("session `{session}` follows the global clock"),
    };
    println!(
        "{whose}: {now} (Astana), factor {}, {} ({:+.0} s from real time)",
        reading.factor,
        if reading.simulated {
            "simulated"
        } else {
            "real"
        },
        reading.offset_seconds
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shep_proto::admin::v1::set_clock_request::Change;

    #[test]
    fn advances_parse_with_their_units() {
        assert_eq!(advance("90s").unwrap(), Change::AdvanceSeconds(90));
        assert_eq!(advance("2h").unwrap(), Change::AdvanceSeconds(7_200));
        assert_eq!(advance("3d").unwrap(), Change::AdvanceSeconds(259_200));
        assert_eq!(advance("6wd").unwrap(), Change::AdvanceWorkingDays(6));
        assert!(advance("6").is_err());
        assert!(advance("6 weeks").is_err());
        assert!(advance("wd").is_err());
    }
}
/// `shep faults`: the toolkit's faults (TESTING.md#faults) from the command line.
#[derive(Debug, clap::Subcommand)]
pub(super) enum FaultsCommand {
    /// Attaches a fault (replacing one with the same `--id`) and prints it.
    Add(Box<FaultArgs>),
    /// Lists the faults with how often each matched and fired.
    List {
        /// Only this test session's (`x-shep-session`); all without.
        #[arg(long)]
        session: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Removes one fault.
    Delete {
        id: String,
        #[arg(long)]
        session: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// What a fault does (`Fault.effect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum FaultEffect {
    /// Answer with `--code` (default UNAVAILABLE) and `--message`.
    Error,
    /// Never answer in time (`--max-ms` without a caller deadline).
    Hang,
    /// (provider) end each Subscribe stream after `--after` deliveries.
    CutStreamAfter,
    /// Close the caller's connection.
    DropConnection,
    /// (registry) health reads NOT_SERVING.
    NotServing,
    /// Nothing; a step in a sequence.
    Pass,
    /// (provider) send each delivery twice.
    DuplicateDelivery,
    /// (provider) flip a bit of the delivered envelope's signature.
    CorruptDelivery,
    /// (provider) hold each delivery for `--delay-ms`.
    DelayDelivery,
    /// (provider) ignore the provider's ack of the delivery.
    DropAck,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["registry", "service", "provider", "subject", "watch"])))]
pub(super) struct FaultArgs {
    /// Target: a registry (`gbdfl`, `gbdul`, `enis`).
    #[arg(long)]
    registry: Option<String>,
    /// Target: a service of the routing table.
    #[arg(long)]
    service: Option<String>,
    /// Target: a provider system.
    #[arg(long)]
    provider: Option<String>,
    /// Target: one IIN or BIN in registry lookups.
    #[arg(long)]
    subject: Option<String>,
    /// Target: Gateway.Watch streams of a consumer system (`*`: any caller);
    /// e.g. `--watch '*' --effect cut-stream-after --after 2`.
    #[arg(long)]
    watch: Option<String>,
    /// What it does; without it, only `--delay-ms`.
    #[arg(long, value_enum)]
    effect: Option<FaultEffect>,
    /// A fixed delay before the effect, in milliseconds.
    #[arg(long)]
    delay_ms: Option<u32>,
    /// `error`: the gRPC code's name.
    #[arg(long, default_value = "UNAVAILABLE")]
    code: String,
    /// `error`: the message.
    #[arg(long, default_value = "")]
    message: String,
    /// `error`: the ErrorInfo reason, e.g. `REGISTRY_UNAVAILABLE` (default
    /// `INJECTED_FAULT`), so a client classifies it as the real refusal.
    #[arg(long, default_value = "")]
    reason: String,
    /// `hang`: give up after this long without a caller deadline.
    #[arg(long, default_value_t = 0)]
    max_ms: u32,
    /// `cut-stream-after`: deliveries (or Watch events) before the cut.
    #[arg(long, default_value_t = 1)]
    after: u32,
    /// The share of matches it fires on (0 < rate <= 1).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fires at most this many times (0: no limit).
    #[arg(long, default_value_t = 0)]
    times: u32,
    #[arg(long, default_value_t = 0)]
    starts_after_ms: u32,
    #[arg(long, default_value_t = 0)]
    lasts_ms: u32,
    /// Chosen by the gateway when absent.
    #[arg(long, default_value = "")]
    id: String,
    #[arg(long, default_value = "")]
    description: String,
    /// Only for this test session (`x-shep-session`); global without.
    #[arg(long)]
    session: Option<String>,
    #[command(flatten)]
    admin: AdminArgs,
}

impl FaultArgs {
    fn fault(&self) -> shep_proto::admin::v1::Fault {
        use fault_target::Target;
        use shep_proto::admin::v1::{
            Delay, ErrorEffect, Fault, FaultTarget, HangEffect, delay, fault, fault_target,
        };
        let target = match (&self.registry, &self.service, &self.provider, &self.subject) {
            (Some(id), ..) => Target::Registry(id.clone()),
            (_, Some(id), ..) => Target::Service(id.clone()),
            (_, _, Some(id), _) => Target::Provider(id.clone()),
            (.., Some(id)) => Target::Subject(id.clone()),
            // clap requires one of them.
            _ => match &self.watch {
                Some(id) => Target::Watch(id.clone()),
                None => Target::Service(String::new()),
            },
        };
        let effect = self.effect.map(|effect| match effect {
            FaultEffect::Error => fault::Effect::Error(ErrorEffect {
                code: self.code.clone(),
                message: self.message.clone(),
                reason: self.reason.clone(),
                ..ErrorEffect::default()
            }),
            FaultEffect::Hang => fault::Effect::Hang(HangEffect {
                max_ms: self.max_ms,
            }),
            FaultEffect::CutStreamAfter => fault::Effect::CutStreamAfter(self.after),
            FaultEffect::DropConnection => fault::Effect::DropConnection(true),
            FaultEffect::NotServing => fault::Effect::NotServing(true),
            FaultEffect::Pass => fault::Effect::Pass(true),
            FaultEffect::DuplicateDelivery => fault::Effect::DuplicateDelivery(true),
            FaultEffect::CorruptDelivery => fault::Effect::CorruptDelivery(true),
            FaultEffect::DelayDelivery => fault::Effect::DelayDelivery(true),
            FaultEffect::DropAck => fault::Effect::DropAck(true),
        });
        Fault {
            id: self.id.clone(),
            target: Some(FaultTarget {
                target: Some(target),
            }),
            delay: self.delay_ms.map(|ms| Delay {
                distribution: Some(delay::Distribution::FixedMs(ms)),
            }),
            effect,
            rate: self.rate,
            seed: self.seed,
            times: self.times,
            starts_after_ms: self.starts_after_ms,
            lasts_ms: self.lasts_ms,
            description: self.description.clone(),
            ..Fault::default()
        }
    }
}

/// `request` in test session `session`, if any.
fn in_session<T>(mut request: Request<T>, session: Option<&str>) -> anyhow::Result<Request<T>> {
    if let Some(session) = session {
        request.metadata_mut().insert(
            shep_gateway::toolkit::SESSION_HEADER,
            session
                .parse()
                .context("the session is not a valid header value")?,
        );
    }
    Ok(request)
}

fn print_fault(fault: &shep_proto::admin::v1::Fault) {
    let target = fault
        .target
        .as_ref()
        .and_then(|target| target.target.as_ref())
        .map(|target| format!("{target:?}"))
        .unwrap_or_default();
    let effect = fault
        .effect
        .as_ref()
        .map(|effect| format!("{effect:?}"))
        .unwrap_or_else(|| "delay only".to_owned());
    let session = if fault.session.is_empty() {
        "global".to_owned()
    } else {
        format!("session {}", fault.session)
    };
    println!(
        "  {} {target} {effect} ({session}): matched {}, fired {}",
        fault.id, fault.matched, fault.fired
    );
}

/// Runs `shep faults`.
pub(super) async fn faults(command: FaultsCommand) -> anyhow::Result<()> {
    use shep_proto::admin::v1::admin_client::AdminClient;
    use shep_proto::admin::v1::{DeleteFaultRequest, ListFaultsRequest};
    let (admin, session) = match &command {
        FaultsCommand::Add(args) => (&args.admin, args.session.clone()),
        FaultsCommand::List { admin, session } | FaultsCommand::Delete { admin, session, .. } => {
            (admin, session.clone())
        }
    };
    let mut client = AdminClient::new(connect_as(&admin.gateway, &admin.data_dir, None).await?);
    let listed = match &command {
        FaultsCommand::Add(args) => {
            let fault = client
                .add_fault(in_session(
                    admin.authorized(args.fault())?,
                    session.as_deref(),
                )?)
                .await
                .map_err(describe)?
                .into_inner();
            println!("added");
            print_fault(&fault);
            return Ok(());
        }
        FaultsCommand::List { .. } => {
            client
                .list_faults(in_session(
                    admin.authorized(ListFaultsRequest {})?,
                    session.as_deref(),
                )?)
                .await
        }
        FaultsCommand::Delete { id, .. } => {
            client
                .delete_fault(in_session(
                    admin.authorized(DeleteFaultRequest { id: id.clone() })?,
                    session.as_deref(),
                )?)
                .await
        }
    };
    let faults = listed.map_err(describe)?.into_inner().faults;
    println!("{} fault(s)", faults.len());
    for fault in &faults {
        print_fault(fault);
    }
    Ok(())
}
