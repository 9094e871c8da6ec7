//! What a node killed mid-Submit leaves half done, finished by the others.
//!
//! Submit stores the acceptance, then the ACCEPTED event, then queues the
//! request, and answers only after all three. A node killed between them
//! leaves an application that no receipt announced (no event yet: it is
//! forgotten, so a re-send is accepted afresh) or one that is receipted but
//! never queued (it is queued: delivery is at least once). Every node runs
//! this loop; a push that two nodes make is stored once (`Nats-Msg-Id`), a
//! forget twice is harmless.

use std::sync::Arc;
use std::time::Duration;

use shep_proto::gateway::v1::MessageState;
use time::OffsetDateTime;

use super::{JetStreamQueues, JetStreamStore};
use crate::storage::{ApplicationStore as _, Pending, ProviderQueue as _};

/// Longer than any Submit in progress between its steps, so the loop never
/// races a live node (a Submit's own deadline is seconds).
const GRACE: Duration = Duration::from_secs(15);
/// How often the loop looks.
const EVERY: Duration = Duration::from_secs(2);

enum Unfinished {
    /// Accepted, without its first event.
    Unannounced(String),
    /// Receipted, never queued.
    Unqueued { provider: String, pending: Pending },
}

pub(super) async fn run(store: Arc<JetStreamStore>, queues: Arc<JetStreamQueues>) {
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let old = OffsetDateTime::now_utc() - GRACE;
        let mut unfinished = Vec::new();
        store.replica().for_each(|record| {
            if record.accepted_at > old {
                return;
            }
            if record.events.is_empty() {
                unfinished.push(Unfinished::Unannounced(record.message_id.clone()));
            } else if record.delivery_state == MessageState::OnDelivery
                && !queues
                    .jetstream_queue(&record.provider_id)
                    .knows(&record.message_id)
            {
                unfinished.push(Unfinished::Unqueued {
                    provider: record.provider_id.clone(),
                    pending: Pending {
                        message_id: record.message_id.clone(),
                        service_id: record.service_id.clone(),
                        correlation_id: record.correlation_id.clone(),
                        envelope: record.envelope.clone(),
                        attempts: 0,
                        // Sessions are not stored with the application.
                        session: None,
                    },
                });
            }
        });
        for unfinished in unfinished {
            let outcome = match &unfinished {
                Unfinished::Unannounced(message_id) => {
                    tracing::warn!(%message_id, "an application accepted without its first event (its node stopped mid-Submit): forgotten, a re-send is accepted afresh");
                    store.forget(message_id).await
                }
                Unfinished::Unqueued { provider, pending } => {
                    tracing::warn!(message_id = %pending.message_id, %provider, "a receipted application never queued (its node stopped mid-Submit): queued now");
                    queues.jetstream_queue(provider).push(pending.clone()).await
                }
            };
            if let Err(error) = outcome {
                tracing::warn!(%error, "finishing what a stopped node left undone");
                break;
            }
        }
    }
}
