//! The provider side, free of transport types: acknowledgements and what
//! they settle, leases that expire, dead letters, the pull of
//! `GetMessages`, and the Subscribe protocol ([`subscription`]).

pub(crate) mod delivery_faults;
pub(crate) mod subscription;

use shep_proto::envelope::v1::ApplicationStatus;
use shep_proto::gateway::v1::MessageState;
use shep_proto::provider::v1::{
    Ack, Delivery as DeliveryMessage, ReceiveStatus, ResendMessage, SubscribeResponse,
    subscribe_response,
};
use time::OffsetDateTime;

use crate::engine::Engine;
use crate::envelope::parse_uuid;
use crate::error::{GatewayError, with_causes};
use crate::lifecycle::default_notification;
use crate::storage::{Change, Filter, Leased, Pending, Settled, Ticket, timestamp};
use crate::toolkit::exchanges::{Record as ExchangeRecord, any};

/// The most unacknowledged deliveries a connection may hold.
const MAX_IN_FLIGHT: u32 = 1024;

/// Checks that `provider` has a queue: a provider system, or a consumer
/// system that receives responses (`responses = true`).
pub(crate) fn check_provider(engine: &Engine, provider: &str) -> Result<(), GatewayError> {
    if receives_responses(engine, provider) {
        return Ok(());
    }
    crate::checks::check_provider(&engine.routes(), provider)
}

/// Whether `system` is a consumer whose queue holds its providers' reports.
pub(crate) fn receives_responses(engine: &Engine, system: &str) -> bool {
    engine
        .routes()
        .system(system)
        .is_some_and(|spec| spec.responses && spec.role != crate::routes::Role::Provider)
}

/// Queues a provider's report for the consumer system that sent the
/// application, when it receives responses: the envelope exactly as the
/// provider signed it. A full queue drops it (the status event stays):
/// a consumer that reads nothing must not block the providers' reports.
pub(crate) async fn queue_response(
    engine: &Engine,
    consumer: &str,
    report: std::sync::Arc<shep_proto::envelope::v1::SignedEnvelope>,
    inbound: &crate::envelope::Inbound,
    session: Option<std::sync::Arc<str>>,
) {
    if !receives_responses(engine, consumer) {
        return;
    }
    let queue = engine.delivery().queue(consumer);
    match queue.depth().await {
        Ok((queued, leased, _)) if queued + leased >= engine.settings.max_queue_depth => {
            tracing::warn!(%consumer, report = %inbound.message_id, "the consumer's response queue is full: the report is not queued for it");
            return;
        }
        Err(error) => {
            tracing::warn!(%consumer, error = %with_causes(&error), "reading the response queue's depth failed");
            return;
        }
        Ok(_) => {}
    }
    let pushed = queue
        .push(Pending {
            message_id: inbound.message_id.clone(),
            service_id: inbound.body.service_id.clone(),
            correlation_id: inbound.body.correlation_id.clone(),
            envelope: report,
            attempts: 0,
            session,
        })
        .await;
    if let Err(error) = pushed {
        tracing::warn!(%consumer, report = %inbound.message_id, error = %with_causes(&error), "queueing a response failed");
    }
}

/// The in-flight limit for a Hello asking for `requested` (0: the default).
pub(crate) fn in_flight_for(engine: &Engine, requested: u32) -> usize {
    let chosen = if requested == 0 {
        engine.settings.default_in_flight
    } else {
        requested
    };
    chosen.clamp(1, MAX_IN_FLIGHT) as usize
}

/// A leased delivery as the provider receives it.
pub(crate) fn delivery_message(leased: &Leased) -> DeliveryMessage {
    let remaining = leased
        .until
        .saturating_duration_since(tokio::time::Instant::now());
    DeliveryMessage {
        message_id: leased.pending.message_id.clone(),
        service_id: leased.pending.service_id.clone(),
        envelope: Some((*leased.pending.envelope).clone()),
        attempt: leased.pending.attempts,
        lease_until: Some(timestamp(
            OffsetDateTime::now_utc() + time::Duration::try_from(remaining).unwrap_or_default(),
        )),
    }
}

/// `GetMessages`: up to `amount` deliveries leased to no connection, as the
/// faults on deliveries make them (a duplicate is listed twice; the answer
/// waits for the longest hold).
pub(crate) async fn pull(
    engine: &Engine,
    provider: &str,
    filter: &Filter,
    amount: usize,
) -> Result<Vec<DeliveryMessage>, GatewayError> {
    let queue = engine.delivery().queue(provider);
    let mut messages = Vec::new();
    let mut sessions = Vec::new();
    let mut taken = 0;
    let mut hold = None;
    while taken < amount {
        match queue.take(None, 0, filter, engine.lease()).await? {
            Some(leased) => {
                taken += 1;
                let mut message = delivery_message(&leased);
                let session = filter
                    .session
                    .as_deref()
                    .or(leased.pending.session.as_deref());
                let planned = delivery_faults::plan(engine, provider, session, &mut message);
                hold = hold.max(planned.hold);
                for _ in 0..planned.copies {
                    messages.push(message.clone());
                    sessions.push(session.unwrap_or_default().to_owned());
                }
            }
            None => break,
        }
    }
    delivery_faults::held(hold, std::future::pending()).await;
    // Journaled as the stream journals its deliveries, so the conformance
    // kits read a pulling provider the same way.
    for (message, session) in messages.iter().zip(sessions) {
        engine.toolkit().exchanges.record(|| ExchangeRecord {
            session,
            rpc: PULL_RPC.to_owned(),
            hop: "delivery",
            service_id: message.service_id.clone(),
            message_id: message.message_id.clone(),
            subject: provider.to_owned(),
            response: Some(any(
                "shep.provider.v1.SubscribeResponse",
                &SubscribeResponse {
                    kind: Some(subscribe_response::Kind::Delivery(message.clone())),
                },
            )),
            ..ExchangeRecord::default()
        });
    }
    Ok(messages)
}

const PULL_RPC: &str = "shep.provider.v1.Provider/GetMessages";
const ACK_RPC: &str = "shep.provider.v1.Provider/Acknowledge";

/// Applies a provider's acknowledgement of a delivery (`Acknowledge`) and
/// answers once what it settled is durable: a delivery acknowledged is never
/// delivered again, even after a crash.
pub(crate) async fn acknowledge(
    engine: &Engine,
    provider: &str,
    ack: &Ack,
) -> Result<Settled, GatewayError> {
    let result = settle_ack(engine, provider, ack).await;
    engine.toolkit().exchanges.record(|| {
        let mut record = ExchangeRecord {
            rpc: ACK_RPC.to_owned(),
            hop: "delivery",
            message_id: ack.message_id.clone(),
            subject: provider.to_owned(),
            request: Some(any("shep.provider.v1.Ack", ack)),
            ..ExchangeRecord::default()
        };
        if let Err(error) = &result {
            record.failed(&crate::error::into_status(error.clone()));
        }
        record
    });
    let (settled, ticket) = result?;
    if let Some(ticket) = ticket {
        ticket.durable().await?;
    }
    Ok(settled)
}

/// Applies a provider's acknowledgement of a delivery; the ticket, when a
/// status change was recorded, resolves once it is durable. An ack on the
/// Subscribe stream has no answer to hold back, so the stream does not wait
/// for it (the next group commit takes it; a crash before that delivers the
/// request again: at least once).
pub(crate) async fn settle_ack(
    engine: &Engine,
    provider: &str,
    ack: &Ack,
) -> Result<(Settled, Option<Ticket>), GatewayError> {
    let message_id = parse_uuid("message_id", &ack.message_id)?;
    let accepted = match ReceiveStatus::try_from(ack.receive_status) {
        Ok(ReceiveStatus::MessageAccepted) => true,
        Ok(ReceiveStatus::MessageNotAccepted) => false,
        _ => {
            return Err(GatewayError::InvalidField {
                field: "receive_status",
                problem: "must be MESSAGE_ACCEPTED or MESSAGE_NOT_ACCEPTED".to_owned(),
            });
        }
    };
    let resend = ack.resend != ResendMessage::NotResend as i32;
    if receives_responses(engine, provider) {
        // A response on a consumer's own queue: nothing to record beyond it.
        let settled = engine
            .delivery()
            .queue(provider)
            .acknowledge(&message_id, accepted, resend, engine.settings.max_attempts)
            .await?
            .ok_or_else(|| GatewayError::MessageNotFound(message_id.clone()))?;
        return Ok((settled, None));
    }
    let owner = engine
        .store()
        .with(&message_id, |record| record.provider_id.clone())
        .await?
        .ok_or_else(|| GatewayError::MessageNotFound(message_id.clone()))?;
    if owner != provider {
        return Err(GatewayError::ProviderNotAllowed {
            provider: provider.to_owned(),
            message_id,
        });
    }
    if let Some(fault_id) = engine.toolkit().faults.take_dropped_ack(&message_id) {
        // As if it was lost on the way: the lease runs out and the request
        // is delivered again.
        tracing::info!(%message_id, provider, fault = %fault_id, "ack dropped by a fault");
        return Ok((Settled::Requeued, None));
    }
    let settled = engine
        .delivery()
        .queue(provider)
        .acknowledge(&message_id, accepted, resend, engine.settings.max_attempts)
        .await?
        .ok_or_else(|| GatewayError::MessageNotFound(message_id.clone()))?;
    let ticket = apply_settled(engine, &message_id, &settled, &ack.error_message).await;
    Ok((settled, ticket))
}

/// Records what a settled delivery means for the application; the ticket
/// resolves when the change is durable (`None`: nothing to record).
pub(crate) async fn apply_settled(
    engine: &Engine,
    message_id: &str,
    settled: &Settled,
    reason: &str,
) -> Option<Ticket> {
    let (state, reason) = match settled {
        Settled::Requeued => return None,
        Settled::Delivered => (MessageState::Delivered, String::new()),
        Settled::NotDelivered => (
            MessageState::NotDelivered,
            if reason.is_empty() {
                "the provider did not accept the request".to_owned()
            } else {
                reason.to_owned()
            },
        ),
        Settled::Stopped { attempts } => (
            MessageState::DeliveryStopped,
            format!("delivery stopped after {attempts} attempts"),
        ),
    };
    let outcome = engine.store().record(message_id, |record| {
        if record.delivery_state != MessageState::OnDelivery {
            return Err(GatewayError::InvalidStatusTransition {
                from: format!("{:?}", record.delivery_state),
                to: format!("{state:?}"),
                rule: "a delivery is settled once".to_owned(),
            });
        }
        record.delivery_state = state;
        // Hop latency in real time: meaningless while a clock is simulated.
        if state == MessageState::Delivered && !engine.toolkit().clock.is_simulated() {
            let waited = OffsetDateTime::now_utc() - record.accepted_at;
            engine.metrics().hop_seconds(
                "submit",
                &record.service_id,
                "delivery",
                waited.as_seconds_f64().max(0.0),
            );
        }
        let status = if state == MessageState::Delivered {
            if record.status != ApplicationStatus::Accepted {
                // A report already moved the status on; nothing to announce.
                return Err(GatewayError::InvalidStatusTransition {
                    from: format!("{:?}", record.status),
                    to: "Delivered".to_owned(),
                    rule: "a report already proved the delivery".to_owned(),
                });
            }
            ApplicationStatus::Delivered
        } else {
            ApplicationStatus::NotDelivered
        };
        record.status = status;
        Ok(Change {
            status,
            notification: default_notification(status, "", None, &reason),
            reason: reason.clone(),
            reported_by: "gateway".to_owned(),
            occurred_at: Some(engine.now_in(&record.test_session)),
            ..Change::default()
        })
    });
    match outcome.await {
        Ok((_, ticket)) => Some(ticket),
        Err(error) => {
            tracing::debug!(message_id, error = %with_causes(&error), "delivery settled without a status event");
            None
        }
    }
}

/// Dead letters, per provider (all providers when `provider` is empty).
pub(crate) async fn dead_letters(
    engine: &Engine,
    provider: &str,
) -> Result<Vec<(String, Pending)>, GatewayError> {
    let mut letters = Vec::new();
    for (id, queue) in engine.delivery().queues().await? {
        if provider.is_empty() || id == provider {
            let dead = queue.dead_letters().await?;
            letters.extend(dead.into_iter().map(|pending| (id.clone(), pending)));
        }
    }
    Ok(letters)
}

/// Puts a dead letter back into its provider's queue; its status returns to
/// ACCEPTED, journaled before it is delivered again.
pub(crate) async fn requeue_dead_letter(
    engine: &Engine,
    message_id: &str,
) -> Result<String, GatewayError> {
    let message_id = parse_uuid("message_id", message_id)?;
    let not_found = || GatewayError::MessageNotFound(format!("dead letter `{message_id}`"));
    let store = engine.store();
    let provider = store
        .with(&message_id, |record| record.provider_id.clone())
        .await?
        .ok_or_else(not_found)?;
    let requeued = store.record(&message_id, |record| {
        if record.delivery_state != MessageState::DeliveryStopped {
            return Err(not_found());
        }
        record.delivery_state = MessageState::OnDelivery;
        record.status = ApplicationStatus::Accepted;
        Ok(Change {
            status: ApplicationStatus::Accepted,
            notification: "Доставка заявки возобновлена оператором".to_owned(),
            reported_by: "operator".to_owned(),
            ..Change::default()
        })
    });
    let (_, ticket) = requeued.await?;
    ticket.durable().await?;
    if !engine
        .delivery()
        .queue(&provider)
        .requeue(&message_id)
        .await?
    {
        return Err(GatewayError::Internal(format!(
            "`{message_id}` was stopped but not in the dead letters of `{provider}`"
        )));
    }
    tracing::info!(%message_id, %provider, "dead letter requeued");
    Ok(provider)
}

/// Requeues expired leases on every queue; stops those out of attempts.
pub(crate) async fn expire_leases(engine: &Engine) {
    expire_leases_by(engine, tokio::time::Instant::now()).await;
}

/// Ends the leases that run out by `now` (later than the real now when the
/// simulated clock jumped forwards past them).
pub(crate) async fn expire_leases_by(engine: &Engine, now: tokio::time::Instant) {
    // A failure leaves the leases for the next tick.
    let queues = match engine.delivery().queues().await {
        Ok(queues) => queues,
        Err(error) => {
            tracing::warn!(error = %with_causes(&error), "listing the provider queues failed");
            return;
        }
    };
    for (provider, queue) in queues {
        let expired = match queue.expire(now, engine.settings.max_attempts).await {
            Ok(expired) => expired,
            Err(error) => {
                tracing::warn!(%provider, error = %with_causes(&error), "expiring leases failed");
                continue;
            }
        };
        for (message_id, settled) in expired {
            tracing::info!(%provider, %message_id, ?settled, "lease expired");
            // Journaled with the next group commit; a crash before it
            // delivers the request again.
            apply_settled(engine, &message_id, &settled, "").await;
        }
    }
}
