//! `Gateway.Submit`: accepts an application, durably, and queues it for its
//! provider.

use std::sync::Arc;
use std::time::Duration;

use ring::digest::{SHA256, digest};
use shep_proto::envelope::v1::{ApplicationStatus, MessageType, SignedEnvelope};
use shep_proto::gateway::v1::{MessageState, Receipt};
use tokio::time::Instant;

use crate::checks;
use crate::engine::Engine;
use crate::envelope::Inbound;
use crate::error::{GatewayError, with_causes};
use crate::lifecycle::default_notification;
use crate::routes::ServiceKind;
use crate::storage::{ApplicationRecord, ApplicationStore, Change, Inserted, Pending, timestamp};
use crate::toolkit::CallContext;

/// How long an identical re-send waits for its original to be durable.
const ORIGINAL_PATIENCE: Duration = Duration::from_secs(10);

/// The SHA-256 of a body: what tells an identical re-send from a duplicate id.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    digest(&SHA256, bytes)
        .as_ref()
        .try_into()
        .expect("sha-256 is 32 bytes")
}

/// The steps of `Gateway.Submit`, in order.
pub async fn submit(
    engine: &Engine,
    envelope: SignedEnvelope,
    ctx: &CallContext,
) -> Result<Receipt, GatewayError> {
    let start = Instant::now();
    // 1. The body: decoded, its fields and date valid; a REQUEST.
    let inbound = checks::decode(&envelope, engine.checks.skew_secs)?;
    checks::attachments(&inbound.body, engine.checks.max_attachment_bytes)?;
    checks::message_type(&inbound, &[MessageType::Request], "Gateway.Submit")?;
    ctx.principal.act_as(
        &inbound.sender_id,
        "an application comes from the system it names as sender",
    )?;
    // 2. The route: the service exists, an application service, open to
    //    this sender and channel.
    let routes = engine.routes();
    let route = checks::authorize(&routes, &inbound, ServiceKind::Application)?;
    // 3. Faults a test session attached to the service.
    super::service_faults(engine, &route.service_id, ctx).await?;
    // 4. The signature, then who signed. Before idempotency: a re-send with a
    //    broken signature is refused, never answered with the stored receipt.
    let signer = engine.checks.signer(&envelope, &inbound).await?;
    engine.checks.identity(&routes, &inbound, &signer)?;
    let service = route.service_id.as_str();
    engine.metrics().hop("submit", service, "checks", start);
    // 5. Idempotency: an identical re-send gets the original's receipt; the
    //    same id with another body is a duplicate.
    let digest = sha256(&envelope.body);
    if let Some(existing) = existing_receipt(engine, &inbound, &digest).await {
        return existing;
    }
    // 6. The registry checks of the route on this channel, and the region.
    let asked = Instant::now();
    let kato = checks::check_applicant(&engine.registries, &route, &inbound, &signer, ctx).await?;
    engine.metrics().hop("submit", service, "registry", asked);
    // 7. The provider: named by the sender or the region's.
    let provider = checks::provider_for(&route, &inbound, kato.as_deref())?;
    // 8. Room in its queue; refused before anything is stored, so a re-send
    //    is accepted afresh once there is room.
    room_in_queue(engine, &provider).await?;
    // 9. Accepted: durable before anyone hears of it, then queued.
    let envelope = Arc::new(envelope);
    // On the session's clock: due times and overdue marks count from here.
    let accepted_at = engine.now_in(ctx.session().unwrap_or_default());
    let record = ApplicationRecord {
        message_id: inbound.message_id.clone(),
        service_id: route.service_id.clone(),
        subject: inbound.subject.clone(),
        channel: inbound.channel.to_proto() as i32,
        sender_id: inbound.sender_id.clone(),
        provider_id: provider.clone(),
        accepted_at,
        delivery_state: MessageState::OnDelivery,
        status: ApplicationStatus::Accepted,
        registration_number: String::new(),
        expected_at: None,
        deadline: route.deadline,
        test: inbound.body.test,
        events: Vec::new(),
        envelope: envelope.clone(),
        body_digest: digest,
        session_id: inbound.body.session_id.clone(),
        correlation_id: inbound.body.correlation_id.clone(),
        due_at: route
            .deadline
            .map(|deadline| deadline.due(accepted_at, &engine.calendar)),
        test_session: ctx.session_label(),
    };
    let receipt = receipt(&record);
    let due_at = record.due_at;
    let store = engine.store();
    match store.insert(record).await? {
        Inserted::New => {}
        // Lost a race with an identical re-send: answer as it will be
        // answered, once it is durable.
        Inserted::Existing => {
            return existing_receipt(engine, &inbound, &digest)
                .await
                .unwrap_or_else(|| Err(GatewayError::MessageNotFound(inbound.message_id.clone())));
        }
        // Lost a race with another body (or sender) under the same id.
        Inserted::Duplicate => {
            return Err(GatewayError::DuplicateMessage {
                message_id: inbound.message_id.clone(),
                sender: inbound.sender_id.clone(),
            });
        }
    }
    let unqueued = Unqueued {
        store: engine.store_handle(),
        message_id: Some(inbound.message_id.clone()),
    };
    let (_, ticket) = store
        .record(&inbound.message_id, |_| {
            Ok::<_, GatewayError>(Change {
                status: ApplicationStatus::Accepted,
                notification: default_notification(ApplicationStatus::Accepted, "", None, ""),
                reported_by: "gateway".to_owned(),
                occurred_at: Some(accepted_at),
                ..Change::default()
            })
        })
        .await?;
    unqueued.disarm();
    let committing = Instant::now();
    let committed = ticket.durable().await;
    engine
        .metrics()
        .hop("submit", service, "journal", committing);
    if let Err(error) = committed {
        // So that a re-send is accepted afresh.
        if let Err(forgetting) = store.forget(&inbound.message_id).await {
            tracing::warn!(message_id = %inbound.message_id, error = %with_causes(&forgetting), "forgetting an application not made durable failed");
        }
        return Err(error.into());
    }
    engine
        .delivery()
        .queue(&provider)
        .push(Pending {
            message_id: inbound.message_id.clone(),
            service_id: route.service_id.clone(),
            correlation_id: inbound.body.correlation_id.clone(),
            envelope,
            attempts: 0,
            session: ctx.session.clone(),
        })
        .await?;
    if let Some(due) = due_at {
        engine
            .deadlines()
            .track(ctx.session().unwrap_or_default(), due, &inbound.message_id);
    }
    tracing::info!(message_id = %inbound.message_id, %service, %provider, "accepted");
    engine.metrics().hop("submit", service, "total", start);
    Ok(receipt)
}

/// How long a Submit refused for a full queue is asked to wait.
const QUEUE_FULL_RETRY: Duration = Duration::from_secs(1);

/// Refuses with QUEUE_FULL when `provider`'s queue holds its limit of
/// requests not yet acknowledged. Concurrent Submits may each see the last
/// free place: the queue overshoots by at most `limits.max_concurrent`.
async fn room_in_queue(engine: &Engine, provider: &str) -> Result<(), GatewayError> {
    let (queued, leased, _) = engine.delivery().queue(provider).depth().await?;
    let limit = engine.settings.max_queue_depth;
    if queued + leased >= limit {
        return Err(GatewayError::QueueFull {
            provider: provider.to_owned(),
            limit,
            retry_after: QUEUE_FULL_RETRY,
        });
    }
    Ok(())
}

/// Abandons an inserted application when the Submit is dropped (its caller
/// went away) before the acceptance was recorded, so nothing stays half
/// accepted in memory and a re-send is accepted afresh.
struct Unqueued {
    store: Arc<dyn ApplicationStore>,
    message_id: Option<String>,
}

impl Unqueued {
    fn disarm(mut self) {
        self.message_id = None;
    }
}

impl Drop for Unqueued {
    fn drop(&mut self) {
        if let Some(message_id) = self.message_id.take() {
            self.store.abandon(&message_id);
        }
    }
}

fn receipt(record: &ApplicationRecord) -> Receipt {
    Receipt {
        message_id: record.message_id.clone(),
        correlation_id: record.correlation_id.clone(),
        response_date: Some(timestamp(record.accepted_at)),
        session_id: record.session_id.clone(),
        provider_id: record.provider_id.clone(),
        status: ApplicationStatus::Accepted as i32,
    }
}

/// The receipt of an identical re-send, once the original is durable; a
/// different body under the same id is a duplicate. `None`: a new message.
async fn existing_receipt(
    engine: &Engine,
    inbound: &Inbound,
    digest: &[u8; 32],
) -> Option<Result<Receipt, GatewayError>> {
    let store = engine.store();
    let same = match store
        .with(&inbound.message_id, |record| {
            record.sender_id == inbound.sender_id && &record.body_digest == digest
        })
        .await
    {
        Ok(same) => same?,
        Err(error) => return Some(Err(error.into())),
    };
    if !same {
        return Some(Err(GatewayError::DuplicateMessage {
            message_id: inbound.message_id.clone(),
            sender: inbound.sender_id.clone(),
        }));
    }
    // Never answer for an original that a crash could still take back.
    match store
        .accepted_visible(&inbound.message_id, ORIGINAL_PATIENCE)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return Some(Err(GatewayError::Internal(format!(
                "the first copy of `{}` is not yet durable; send again",
                inbound.message_id
            ))));
        }
        Err(error) => return Some(Err(error.into())),
    }
    store
        .with(&inbound.message_id, receipt)
        .await
        .map_err(GatewayError::from)
        .transpose()
}
