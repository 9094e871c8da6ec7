//! The provider cases: each sets up its faults, submits, follows the
//! application and judges the journal. A case answers `Ok(None)` when the
//! provider passed, `Ok(Some(why))` when it failed, and `Err` when the kit
//! could not run it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use prost_types::Timestamp;
use shep_gateway::toolkit::clock::MAX_FACTOR;
use shep_proto::admin::v1::{Delay, delay, fault, set_clock_request};
use shep_proto::envelope::v1::ApplicationStatus;
use shep_proto::gateway::v1::GetStatusRequest;

use super::ctx::Ctx;
use super::{Case, ProviderKit};
use crate::conformance::journal::{Entry, Journal, Seen, short, status_name};

/// How long the `lease-expiry` case holds the first delivery.
const HOLD: Duration = Duration::from_millis(3000);

pub(super) async fn run(
    kit: &ProviderKit,
    case: Case,
    session: &str,
    journal: &Journal,
    evidence: &mut Vec<String>,
) -> anyhow::Result<Option<String>> {
    // Its own clock, so the global clock the lease cases move does not
    // carry this session's deadlines with it.
    kit.admin
        .set_clock(
            Some(session),
            set_clock_request::Change::Set(Timestamp::from(SystemTime::now())),
        )
        .await?;
    let ctx = Ctx {
        kit,
        session,
        journal,
        mark: journal.position().await?,
        deadline: tokio::time::Instant::now() + kit.options.case_timeout,
    };
    evidence.push(format!("test session `{session}`"));
    match case.name {
        "delivery" => delivery(&ctx, evidence).await,
        "lost-ack" => lost_ack(&ctx, evidence).await,
        "duplicate" => duplicate(&ctx, evidence).await,
        "lease-expiry" => lease_expiry(&ctx, evidence).await,
        "corrupt" => corrupt(&ctx, evidence).await,
        "burst" => burst(&ctx, evidence).await,
        "deadline" => deadline(&ctx, evidence).await,
        other => anyhow::bail!("no case `{other}`"),
    }
}

fn log(evidence: &mut Vec<String>, entries: &[Entry]) {
    evidence.extend(entries.iter().map(Entry::describe));
}

fn deliveries(entries: &[Entry]) -> usize {
    entries
        .iter()
        .filter(|entry| matches!(entry.seen, Seen::Delivered { .. }))
        .count()
}

fn accepted_acks(entries: &[Entry]) -> usize {
    entries
        .iter()
        .filter(|entry| matches!(entry.seen, Seen::Acked { accepted: true, .. }))
        .count()
}

/// Why the provider's work was not done once: the first status it
/// reported again about an application (IN_WORK again after TERM_EXTENDED
/// is the one repeat the regulations have).
fn reported_twice(entries: &[Entry]) -> Option<String> {
    let mut reported: HashMap<(&str, i32), usize> = HashMap::new();
    let mut extended: HashSet<&str> = HashSet::new();
    for entry in entries {
        let Seen::Reported {
            application,
            report,
            ..
        } = &entry.seen
        else {
            continue;
        };
        let status = report.status;
        if status == ApplicationStatus::TermExtended as i32 {
            extended.insert(application);
        }
        let count = reported.entry((application, status)).or_default();
        *count += 1;
        let again_in_work =
            status == ApplicationStatus::InWork as i32 && extended.contains(application.as_str());
        if *count > 1 && !again_in_work {
            return Some(format!(
                "application {} was processed twice: it reported {} again ({})",
                short(application),
                status_name(status),
                entry.describe()
            ));
        }
    }
    None
}

/// The first report the gateway refused, as a failure.
fn refused_report(entries: &[Entry]) -> Option<String> {
    entries.iter().find_map(|entry| match &entry.seen {
        Seen::Reported {
            report,
            refused: Some(refused),
            ..
        } => Some(format!(
            "the gateway refused its {} report: {refused}",
            status_name(report.status)
        )),
        _ => None,
    })
}

/// `delivery`: acked within the lease, registered with a number, every
/// report accepted, a final status with a verifiable result.
async fn delivery(ctx: &Ctx<'_>, evidence: &mut Vec<String>) -> anyhow::Result<Option<String>> {
    let id = ctx.submit().await?;
    let followed = ctx.follow(&id).await?;
    let ids = [id.clone()];
    let entries = ctx.settled(&ids).await?;
    log(evidence, &entries);
    evidence.extend(followed.lines(&id));
    let first = entries.iter().find_map(|entry| match &entry.seen {
        Seen::Delivered { lease_until, .. } => Some((entry, *lease_until)),
        _ => None,
    });
    let Some((delivered, lease_until)) = first else {
        return Ok(Some(format!(
            "the application was never delivered: is `{}` connected to the gateway (Provider.Subscribe)?",
            ctx.kit.provider_id
        )));
    };
    let ack = entries.iter().find(|entry| {
        entry.sequence > delivered.sequence && matches!(entry.seen, Seen::Acked { .. })
    });
    let Some(ack) = ack else {
        return Ok(Some("the delivery was never acknowledged".to_owned()));
    };
    if let Seen::Acked {
        accepted: false,
        error_message,
        ..
    } = &ack.seen
    {
        return Ok(Some(format!(
            "a valid application was answered MESSAGE_NOT_ACCEPTED ({error_message})"
        )));
    }
    if let (Some(at), Some(until)) = (ack.time, lease_until)
        && at > until
    {
        return Ok(Some(format!(
            "acknowledged after its lease ran out ({} ms late)",
            (at - until).whole_milliseconds()
        )));
    }
    if let Some(refused) = refused_report(&entries) {
        return Ok(Some(refused));
    }
    if let Some(twice) = reported_twice(&entries) {
        return Ok(Some(twice));
    }
    let registered = followed
        .events
        .iter()
        .find(|event| event.status() == ApplicationStatus::Registered);
    match registered {
        Some(event) if event.registration_number.is_empty() => {
            return Ok(Some(
                "REGISTERED was reported without a registration number".to_owned(),
            ));
        }
        None if followed.last.is_some() => {
            return Ok(Some(
                "a final status came without REGISTERED before it".to_owned(),
            ));
        }
        _ => {}
    }
    let Some(last) = followed.last else {
        return Ok(Some(format!(
            "no final status within {} s",
            ctx.kit.options.case_timeout.as_secs()
        )));
    };
    if let Some(overdue) = followed.events.iter().find(|event| event.overdue) {
        return Ok(Some(format!(
            "the application went overdue ({})",
            status_name(overdue.status)
        )));
    }
    let final_event = followed.events.last().cloned().unwrap_or_default();
    match last {
        ApplicationStatus::Completed => match &final_event.result {
            None => return Ok(Some("COMPLETED without a result document".to_owned())),
            Some(document) => match ctx.kit.anchors.verify_document(document) {
                Ok(signer) => evidence.push(format!(
                    "result document `{}` verified: signed by {}",
                    document.name, signer.common_name
                )),
                Err(error) => {
                    return Ok(Some(format!(
                        "the result document's signature does not verify ({}): {error}",
                        error.reason().as_str_name()
                    )));
                }
            },
        },
        ApplicationStatus::Refused if final_event.reason.is_empty() => {
            return Ok(Some("REFUSED without a reason".to_owned()));
        }
        _ => {}
    }
    Ok(None)
}

/// `lost-ack`: the first acknowledgement is dropped; the redelivery must be
/// acknowledged again, and nothing reported twice.
async fn lost_ack(ctx: &Ctx<'_>, evidence: &mut Vec<String>) -> anyhow::Result<Option<String>> {
    ctx.fault(fault::Effect::DropAck(true), None).await?;
    evidence.push("fault: the first acknowledgement is dropped on its way".to_owned());
    let id = ctx.submit().await?;
    let ids = [id.clone()];
    let (_, acked) = ctx
        .wait_for(&ids, |entries| accepted_acks(entries) >= 1)
        .await?;
    if !acked {
        let entries = ctx.entries(&ids).await?;
        log(evidence, &entries);
        return Ok(Some(
            "the first delivery was never acknowledged as accepted".to_owned(),
        ));
    }
    ctx.expire_leases(evidence).await?;
    let (_, again) = ctx
        .wait_for(&ids, |entries| {
            deliveries(entries) >= 2 && accepted_acks(entries) >= 2
        })
        .await?;
    let followed = ctx.follow(&id).await?;
    let entries = ctx.settled(&ids).await?;
    log(evidence, &entries);
    evidence.extend(followed.lines(&id));
    if deliveries(&entries) < 2 {
        anyhow::bail!("the gateway did not redeliver after the lease was ended");
    }
    if !again {
        return Ok(Some(
            "the redelivery was not acknowledged as accepted: the gateway will keep redelivering it"
                .to_owned(),
        ));
    }
    Ok(reported_twice(&entries))
}

/// `duplicate`: the delivery is sent twice; the work is done once.
async fn duplicate(ctx: &Ctx<'_>, evidence: &mut Vec<String>) -> anyhow::Result<Option<String>> {
    ctx.fault(fault::Effect::DuplicateDelivery(true), None)
        .await?;
    evidence.push("fault: the delivery is sent twice".to_owned());
    let id = ctx.submit().await?;
    let followed = ctx.follow(&id).await?;
    let ids = [id.clone()];
    let entries = ctx.settled(&ids).await?;
    log(evidence, &entries);
    evidence.extend(followed.lines(&id));
    if deliveries(&entries) < 2 {
        anyhow::bail!(
            "the duplicate was not delivered (is the provider connected, and the fault in force?)"
        );
    }
    if accepted_acks(&entries) == 0 {
        return Ok(Some(
            "the delivery was never acknowledged as accepted".to_owned(),
        ));
    }
    Ok(reported_twice(&entries))
}

/// `lease-expiry`: the first delivery is held past its lease; the
/// redelivery overtakes it; the late copy must not start the work again.
async fn lease_expiry(ctx: &Ctx<'_>, evidence: &mut Vec<String>) -> anyhow::Result<Option<String>> {
    let hold = Delay {
        distribution: Some(delay::Distribution::FixedMs(HOLD.as_millis() as u32)),
    };
    ctx.fault(fault::Effect::DelayDelivery(true), Some(hold))
        .await?;
    evidence.push(format!(
        "fault: the first delivery is held {} ms on its way",
        HOLD.as_millis()
    ));
    let id = ctx.submit().await?;
    let ids = [id.clone()];
    // The gateway leases it as it enters the hold: end that lease while the
    // copy is still on its way. Again and again until the redelivery shows,
    // since a busy gateway may lease it a moment after the receipt.
    let held_until = tokio::time::Instant::now() + HOLD;
    loop {
        tokio::time::sleep(HOLD / 8).await;
        ctx.expire_leases(evidence).await?;
        let redelivered = ctx
            .entries(&ids)
            .await?
            .iter()
            .any(|entry| matches!(entry.seen, Seen::Delivered { attempt, .. } if attempt >= 2));
        if redelivered || tokio::time::Instant::now() >= held_until {
            break;
        }
    }
    let (_, both) = ctx
        .wait_for(&ids, |entries| {
            let pulled_and_settled = accepted_acks(entries) >= 1
                && entries
                    .iter()
                    .any(|entry| matches!(entry.seen, Seen::Delivered { pulled: true, .. }));
            deliveries(entries) >= 2 || pulled_and_settled
        })
        .await?;
    let followed = ctx.follow(&id).await?;
    let entries = ctx.settled(&ids).await?;
    log(evidence, &entries);
    evidence.extend(followed.lines(&id));
    let attempts: Vec<u32> = entries
        .iter()
        .filter_map(|entry| match entry.seen {
            Seen::Delivered { attempt, .. } => Some(attempt),
            _ => None,
        })
        .collect();
    let pulled = entries
        .iter()
        .any(|entry| matches!(entry.seen, Seen::Delivered { pulled: true, .. }));
    if pulled && attempts == [1] {
        // A pulling provider waits for its GetMessages answer, so nothing
        // overtakes the held copy: its acknowledgement settles it late.
        evidence.push(
            "a pulling provider: the held copy came first and its late acknowledgement settled it"
                .to_owned(),
        );
    } else if !both || attempts.first() == Some(&1) {
        anyhow::bail!(
            "the lease did not run out before the held delivery arrived (attempts in order: {attempts:?})"
        );
    }
    if accepted_acks(&entries) == 0 {
        return Ok(Some("no delivery was acknowledged as accepted".to_owned()));
    }
    Ok(reported_twice(&entries))
}

/// `corrupt`: one bit of the delivered signature is flipped; the provider
/// must not accept it.
async fn corrupt(ctx: &Ctx<'_>, evidence: &mut Vec<String>) -> anyhow::Result<Option<String>> {
    ctx.fault(fault::Effect::CorruptDelivery(true), None)
        .await?;
    evidence.push("fault: one bit of the first delivery's signature is flipped".to_owned());
    let id = ctx.submit().await?;
    let ids = [id.clone()];
    let (entries, answered) = ctx
        .wait_for(&ids, |entries| {
            entries
                .iter()
                .any(|entry| matches!(entry.seen, Seen::Acked { .. }))
        })
        .await?;
    let first = entries.iter().find_map(|entry| match &entry.seen {
        Seen::Delivered { envelope, .. } => Some(envelope.clone().unwrap_or_default()),
        _ => None,
    });
    let Some(envelope) = first else {
        log(evidence, &entries);
        return Ok(Some(format!(
            "the application was never delivered: is `{}` connected?",
            ctx.kit.provider_id
        )));
    };
    if ctx.kit.anchors.verify_envelope(&envelope).is_ok() {
        anyhow::bail!("the corrupted delivery still verifies: the fault did not take");
    }
    // Give a provider that does refuse it the time to take the good copy.
    let followed = ctx.follow(&id).await?;
    let entries = ctx.settled(&ids).await?;
    log(evidence, &entries);
    evidence.extend(followed.lines(&id));
    if !answered {
        return Ok(Some(
            "the corrupted delivery was not answered at all (expected MESSAGE_NOT_ACCEPTED)"
                .to_owned(),
        ));
    }
    let first_ack = entries.iter().find_map(|entry| match &entry.seen {
        Seen::Acked { accepted, .. } => Some(*accepted),
        _ => None,
    });
    if first_ack == Some(true) {
        return Ok(Some(
            "a delivery whose signature does not verify was acknowledged MESSAGE_ACCEPTED"
                .to_owned(),
        ));
    }
    Ok(None)
}

/// `burst`: more applications at once than the provider takes in flight;
/// every one is acknowledged and finished.
async fn burst(ctx: &Ctx<'_>, evidence: &mut Vec<String>) -> anyhow::Result<Option<String>> {
    let count = ctx.kit.options.burst.max(1);
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        ids.push(ctx.submit().await?);
    }
    evidence.push(format!("{count} applications submitted at once"));
    let mut unfinished = Vec::new();
    for id in &ids {
        let followed = ctx.follow(id).await?;
        if followed.last.is_none() {
            unfinished.push(format!(
                "{} (last status {})",
                short(id),
                followed
                    .events
                    .last()
                    .map(|event| status_name(event.status))
                    .unwrap_or("none")
            ));
        }
    }
    let entries = ctx.settled(&ids).await?;
    let acked: HashSet<&str> = entries
        .iter()
        .filter(|entry| matches!(entry.seen, Seen::Acked { accepted: true, .. }))
        .map(Entry::application)
        .collect();
    evidence.push(format!(
        "{} of {count} acknowledged as accepted, {} of {count} finished",
        acked.len(),
        count - unfinished.len()
    ));
    if !unfinished.is_empty() {
        log(evidence, &entries);
        let why = refused_report(&entries)
            .map(|refused| format!(" ({refused})"))
            .unwrap_or_else(|| format!(" within {} s", ctx.kit.options.case_timeout.as_secs()));
        return Ok(Some(format!(
            "{} of {count} applications did not reach a final status{why}: {}",
            unfinished.len(),
            unfinished.join(", ")
        )));
    }
    Ok(reported_twice(&entries))
}

/// `deadline`: the session's clock runs so fast that the service's term
/// passes in `deadline_in`; the provider must finish before an overdue
/// mark.
async fn deadline(ctx: &Ctx<'_>, evidence: &mut Vec<String>) -> anyhow::Result<Option<String>> {
    let id = ctx.submit().await?;
    let application = ctx
        .gateway()
        .get_status(GetStatusRequest {
            message_id: id.clone(),
        })
        .await
        .map_err(crate::client::describe)?
        .into_inner();
    let (Some(accepted), Some(due)) = (application.accepted_at, application.due_at) else {
        anyhow::bail!(
            "the application has no due time: the service has no deadline in the routing table"
        );
    };
    let term = (due.seconds - accepted.seconds).max(1) as f64;
    let real = ctx.kit.options.deadline_in.as_secs_f64().max(0.1);
    // The clock runs at most MAX_FACTOR times: a longer term is shortened
    // by moving the session's clock forwards first.
    let factor = (term / real).min(MAX_FACTOR);
    let skipped = (term - factor * real).max(0.0) as u64;
    if skipped > 0 {
        ctx.kit
            .admin
            .set_clock(
                Some(ctx.session),
                set_clock_request::Change::AdvanceSeconds(skipped),
            )
            .await?;
    }
    ctx.kit
        .admin
        .set_clock(Some(ctx.session), set_clock_request::Change::Factor(factor))
        .await?;
    evidence.push(format!(
        "the term is {:.1} days; the session's clock moved {:.1} days forwards and runs {factor:.0}× so the rest passes in {real} s",
        term / 86_400.0,
        skipped as f64 / 86_400.0,
    ));
    let followed = ctx.follow_until(&id, true).await?;
    let ids = [id.clone()];
    let entries = ctx.entries(&ids).await?;
    log(evidence, &entries);
    evidence.extend(followed.lines(&id));
    if let Some(overdue) = followed.events.iter().find(|event| event.overdue) {
        return Ok(Some(format!(
            "overdue: the term passed while the application was {}",
            status_name(overdue.status)
        )));
    }
    if followed.last.is_none() {
        if let Some(refused) = refused_report(&entries) {
            return Ok(Some(format!(
                "the application cannot be finished in time: {refused}"
            )));
        }
        return Ok(Some(format!(
            "no final status within {} s",
            ctx.kit.options.case_timeout.as_secs()
        )));
    }
    Ok(None)
}
