//! PUSH: the gateway calls a participant's own SOAP endpoint (the
//! `soap_endpoint` of its `[[system]]`), as ШЭП calls `IAsyncChannelClient`:
//! - `sendMessage` for each request in the system's queue. A delivery is
//!   taken from the queue with a lease and acknowledged only when the
//!   endpoint answers it without a fault, so a push has the leases,
//!   redeliveries and dead letters of the gRPC stream;
//! - `changeMassageStatusNotification` (sic) for each status event of an
//!   application the system sent: best effort, as ШЭП's; getMessageStatus
//!   is the durable way to know.

use std::sync::Arc;
use std::time::Duration;

use shep_proto::gateway::v1::StatusEvent;
use shep_proto::provider::v1::{Ack, Delivery, ReceiveStatus, ResendMessage};

use super::SOAP_ENV;
use crate::engine::Engine;
use crate::storage::Filter;
use crate::xmldata::escape;

/// The push interface's namespace.
const CLIENT_INTERFACES: &str = "http://bip.bee.kz/AsyncChannel/v10/Interfaces/Client";
/// How often the queues of push systems are looked at when idle.
const IDLE: Duration = Duration::from_millis(50);
/// Deliveries taken per endpoint per round.
const BATCH: usize = 16;

/// Pushes deliveries and status notifications until `tasks` is aborted.
pub(crate) fn spawn(engine: &Arc<Engine>, tasks: &mut tokio::task::JoinSet<()>) {
    tasks.spawn(deliver(engine.clone()));
    tasks.spawn(notify(engine.clone()));
}

/// Systems with a push endpoint, as the routing table says now.
fn endpoints(engine: &Engine) -> Vec<(String, String)> {
    engine
        .routes()
        .systems()
        .into_iter()
        .filter_map(|system| {
            system
                .soap_endpoint
                .as_ref()
                .map(|url| (system.id.clone(), url.clone()))
        })
        .collect()
}

async fn deliver(engine: Arc<Engine>) {
    loop {
        let mut pushed = 0;
        for (system, url) in endpoints(&engine) {
            if crate::provider::check_provider(&engine, &system).is_err() {
                continue;
            }
            let taken =
                match crate::provider::pull(&engine, &system, &Filter::default(), BATCH).await {
                    Ok(taken) => taken,
                    Err(error) => {
                        tracing::warn!(%system, %error, "push: taking from the queue failed");
                        continue;
                    }
                };
            for delivery in taken {
                pushed += 1;
                push_one(&engine, &system, &url, &delivery).await;
            }
        }
        if pushed == 0 {
            tokio::time::sleep(IDLE).await;
        }
    }
}

/// One delivery: acknowledged when the endpoint answers without a fault;
/// refused as the endpoint's fault says; left to its lease when the
/// endpoint cannot be reached.
async fn push_one(engine: &Engine, system: &str, url: &str, delivery: &Delivery) {
    let body = format!(
        "<S:Envelope xmlns:S=\"{SOAP_ENV}\"><S:Body><ns2:sendMessage xmlns:ns2=\"{CLIENT_INTERFACES}\"><request>{}</request></ns2:sendMessage></S:Body></S:Envelope>",
        super::channel::message_xml(
            delivery.envelope.as_ref().unwrap_or(&Default::default()),
            Some(delivery)
        ),
    );
    let ack = match crate::soap_client::post(url, body, None, &[]).await {
        Ok((200, _)) => Ack {
            message_id: delivery.message_id.clone(),
            receive_status: ReceiveStatus::MessageAccepted as i32,
            provider_id: system.to_owned(),
            ..Ack::default()
        },
        // A SOAP fault: the endpoint refused the message. ШЭП's fault has
        // no resend flag: the message stays in the queue for another try.
        Ok((status, answer)) => {
            tracing::info!(%system, %url, status, "push: the endpoint refused a delivery");
            Ack {
                message_id: delivery.message_id.clone(),
                receive_status: ReceiveStatus::MessageNotAccepted as i32,
                resend: ResendMessage::Resend as i32,
                error_message: fault_text(&answer),
                provider_id: system.to_owned(),
            }
        }
        Err(error) => {
            tracing::info!(%system, %url, %error, "push: the endpoint is unreachable; the lease will bring the message back");
            return;
        }
    };
    if let Err(error) = crate::provider::acknowledge(engine, system, &ack).await {
        tracing::warn!(%system, %error, "push: settling a delivery failed");
    }
}

/// The `faultstring` of a fault, or the start of whatever came back.
fn fault_text(answer: &str) -> String {
    let text = roxmltree::Document::parse(answer)
        .ok()
        .and_then(|document| {
            document
                .descendants()
                .find(|node| node.tag_name().name() == "faultstring")
                .and_then(|node| node.text().map(str::to_owned))
        });
    text.unwrap_or_else(|| answer.chars().take(200).collect())
}

async fn notify(engine: Arc<Engine>) {
    let mut live = engine.store().subscribe();
    loop {
        let event = match live.recv().await {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "push: status notifications fell behind and skipped some"
                );
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let Some((_, url)) = endpoints(&engine)
            .into_iter()
            .find(|(system, _)| *system == event.sender_id)
        else {
            continue;
        };
        let body = notification(&event);
        if let Err(error) = crate::soap_client::post(&url, body, None, &[]).await {
            tracing::info!(%url, %error, "push: a status notification was not taken");
        }
    }
}

/// `changeMassageStatusNotification` of one status event.
fn notification(event: &StatusEvent) -> String {
    use shep_proto::envelope::v1::ApplicationStatus;
    let status = ApplicationStatus::try_from(event.status).unwrap_or(ApplicationStatus::Accepted);
    let state = match status {
        ApplicationStatus::Accepted => "ON_DELIVERY",
        ApplicationStatus::NotDelivered => "NOT_DELIVERED",
        _ => "DELIVERED",
    };
    let date = event
        .occurred_at
        .as_ref()
        .map(super::fault::date)
        .unwrap_or_else(super::fault::now);
    format!(
        "<S:Envelope xmlns:S=\"{SOAP_ENV}\"><S:Body><ns2:changeMassageStatusNotification xmlns:ns2=\"{CLIENT_INTERFACES}\"><request><notification><notificationId>{}-{}</notificationId><messageId>{}</messageId><notificationDate>{date}</notificationDate><messageState>{state}</messageState><status><statusCode>{}</statusCode><statusMessage>{}</statusMessage><statusDate>{date}</statusDate></status></notification><requestDate>{}</requestDate></request></ns2:changeMassageStatusNotification></S:Body></S:Envelope>",
        escape(&event.message_id),
        event.sequence,
        escape(&event.message_id),
        status.as_str_name(),
        escape(&super::channel::event_text(event)),
        super::fault::now(),
    )
}
