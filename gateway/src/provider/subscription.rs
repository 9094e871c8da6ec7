//! The Subscribe protocol, free of transport types: a Hello first (within
//! [`HELLO_TIMEOUT`]), a Welcome back, then deliveries within the
//! subscriber's credit (`max_in_flight` unacknowledged) while acks come in,
//! until either side closes. Leases still held go back to the queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shep_proto::provider::v1::{
    SubscribeRequest, SubscribeResponse, Welcome, subscribe_request, subscribe_response,
};
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt as _};

use crate::engine::Engine;
use crate::error::{GatewayError, InjectedError, with_causes};
use crate::storage::{Filter, Leased};
use crate::toolkit::bindings::normal_uuid;
use crate::toolkit::exchanges::{Record as ExchangeRecord, any};
use crate::toolkit::faults::{Effect, Fired, Site};
use crate::toolkit::{CallContext, inject};

/// How long a new Subscribe stream may take to say Hello.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

const RPC: &str = "shep.provider.v1.Provider/Subscribe";

/// What the subscriber receives: messages, or the error that ends the stream.
pub(crate) type Outbound = mpsc::Sender<Result<SubscribeResponse, GatewayError>>;

/// Faults on the provider that act on the stream rather than on the Hello.
#[derive(Debug, Default)]
struct StreamFaults {
    /// End the stream with `UNAVAILABLE` after this many deliveries.
    cut_after: Option<(u64, String)>,
    /// Drop the connection at the first delivery.
    drop_connection: Option<String>,
}

/// Serves one Subscribe stream: `inbound` is what the provider sends,
/// `tx` what it receives.
pub(crate) async fn serve<S, E>(
    engine: Arc<Engine>,
    mut ctx: CallContext,
    mut inbound: S,
    tx: Outbound,
) where
    S: Stream<Item = Result<SubscribeRequest, E>> + Unpin,
{
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.next()).await {
        Ok(Some(Ok(SubscribeRequest {
            kind: Some(subscribe_request::Kind::Hello(hello)),
        }))) => hello,
        // The provider went away before saying anything.
        Ok(None | Some(Err(_))) => return,
        _ => {
            let _ = tx
                .send(Err(GatewayError::ProtocolViolation(
                    "the first message on Subscribe must be a Hello".to_owned(),
                )))
                .await;
            return;
        }
    };
    let provider = hello.provider_id.clone();
    // Only the Hello names the provider a binding may be of.
    ctx.bind(&engine.toolkit().bindings, Some(&provider));
    let allowed = ctx
        .principal
        .act_as(&provider, "a provider subscribes to its own queue only")
        .and_then(|()| super::check_provider(&engine, &provider));
    if let Err(error) = allowed {
        let _ = tx.send(Err(error)).await;
        return;
    }
    let faults = match provider_faults(&engine, &provider, &ctx).await {
        Ok(faults) => faults,
        Err(error) => {
            let _ = tx.send(Err(error)).await;
            return;
        }
    };
    let connection = engine.connection_id();
    let max_in_flight = super::in_flight_for(&engine, hello.max_in_flight);
    let filter = Filter {
        service_ids: hello.service_ids,
        session: ctx.session.clone(),
        ..Filter::default()
    };
    let welcome = SubscribeResponse {
        kind: Some(subscribe_response::Kind::Welcome(Welcome {
            connection_id: connection.to_string(),
            lease_ms: engine.lease().as_millis() as u64,
        })),
    };
    tracing::info!(%provider, connection, max_in_flight, "provider subscribed");
    let stream = Connection {
        engine: &engine,
        ctx: &ctx,
        provider: &provider,
        connection,
        tx: &tx,
        delivered_in: Mutex::default(),
    };
    if tx.send(Ok(welcome)).await.is_ok() {
        stream
            .run(&mut inbound, max_in_flight, &filter, &faults)
            .await;
    }
    let queue = engine.delivery().queue(&provider);
    match queue
        .release_connection(connection, engine.settings.max_attempts)
        .await
    {
        Ok(released) => {
            for (message_id, settled) in released {
                super::apply_settled(&engine, &message_id, &settled, "").await;
            }
        }
        // The leases run out instead, and expire as any other.
        Err(error) => {
            tracing::warn!(%provider, connection, error = %with_causes(&error), "releasing a connection's leases failed");
        }
    }
    tracing::info!(%provider, connection, "provider disconnected");
}

/// Faults on the provider: refuse or delay the subscription now; cut the
/// stream after N messages or drop the connection at the first delivery later.
async fn provider_faults(
    engine: &Engine,
    provider: &str,
    ctx: &CallContext,
) -> Result<StreamFaults, GatewayError> {
    let toolkit = engine.toolkit();
    let Some(fired) = toolkit
        .faults
        .check(Site::Provider(provider), ctx.session())
    else {
        return Ok(StreamFaults::default());
    };
    let mut faults = StreamFaults::default();
    let effect = match fired.effect {
        Effect::CutStreamAfter(after) => {
            faults.cut_after = Some((u64::from(after), fired.fault_id.clone()));
            Effect::Proceed
        }
        Effect::DropConnection => {
            faults.drop_connection = Some(fired.fault_id.clone());
            Effect::Proceed
        }
        other => other,
    };
    let now = Fired { effect, ..fired };
    let what = format!("provider `{provider}`");
    inject::apply(now, ctx, &what, &toolkit.connections).await?;
    Ok(faults)
}

/// A delivery on its way to a subscriber.
struct Outgoing {
    engine: Arc<Engine>,
    provider: String,
    connection: u64,
    session: String,
    position: u64,
    copies: usize,
    message: SubscribeResponse,
}

impl Outgoing {
    /// Journals and sends it (`copies` times); `false` once the subscriber is gone.
    async fn send(&self, tx: &Outbound) -> bool {
        let Some(subscribe_response::Kind::Delivery(delivery)) = &self.message.kind else {
            return true;
        };
        for _ in 0..self.copies {
            self.engine.toolkit().exchanges.record(|| ExchangeRecord {
                session: self.session.clone(),
                rpc: RPC.to_owned(),
                hop: "delivery",
                service_id: delivery.service_id.clone(),
                message_id: delivery.message_id.clone(),
                response: Some(any("shep.provider.v1.SubscribeResponse", &self.message)),
                stream_position: self.position,
                subject: self.provider.clone(),
                ..ExchangeRecord::default()
            });
            tracing::info!(
                message_id = %delivery.message_id,
                provider = %self.provider,
                connection = self.connection,
                attempt = delivery.attempt,
                "delivered"
            );
            if tx.send(Ok(self.message.clone())).await.is_err() {
                return false;
            }
        }
        true
    }
}

/// One welcomed stream.
struct Connection<'a> {
    engine: &'a Arc<Engine>,
    ctx: &'a CallContext,
    provider: &'a str,
    connection: u64,
    tx: &'a Outbound,
    /// On a stream in no session: the session of each delivery not yet
    /// acked, so its ack is journaled in the submitter's session.
    delivered_in: Mutex<HashMap<String, Arc<str>>>,
}

/// Deliveries whose session a stream remembers for their acks, at most
/// (a delivery never acked is forgotten when the stream starts over).
const MAX_REMEMBERED: usize = 4096;

impl Connection<'_> {
    /// Delivers within the credit and takes acks until either side closes.
    async fn run<S, E>(
        &self,
        inbound: &mut S,
        max_in_flight: usize,
        filter: &Filter,
        faults: &StreamFaults,
    ) where
        S: Stream<Item = Result<SubscribeRequest, E>> + Unpin,
    {
        let engine = self.engine;
        let queue = engine.delivery().queue(self.provider);
        let mut sent: u64 = 0;
        loop {
            // Armed before the queue is looked at, so a push in between wakes us.
            let changed = queue.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            loop {
                let taken = queue
                    .take(Some(self.connection), max_in_flight, filter, engine.lease())
                    .await;
                let leased = match taken {
                    Ok(Some(leased)) => leased,
                    Ok(None) => break,
                    Err(error) => {
                        let _ = self.tx.send(Err(error.into())).await;
                        return;
                    }
                };
                if let Some(fault_id) = &faults.drop_connection {
                    // The lease stays with the dead connection until it is
                    // released: the message is redelivered, not lost.
                    if let Some(peer) = self.ctx.peer {
                        engine.toolkit().connections.kill(peer);
                    }
                    tracing::info!(provider = self.provider, connection = self.connection, fault = %fault_id, "connection dropped by a fault");
                    return;
                }
                sent += 1;
                if !self.deliver(&leased, sent).await {
                    return;
                }
                if let Some((after, fault_id)) = &faults.cut_after
                    && sent >= *after
                {
                    let cut = InjectedError::unavailable(
                        format!("stream cut after {sent} message(s) by a fault"),
                        fault_id,
                    );
                    let _ = self.tx.send(Err(GatewayError::Injected(cut))).await;
                    return;
                }
            }
            tokio::select! {
                message = inbound.next() => match message {
                    Some(Ok(SubscribeRequest { kind: Some(subscribe_request::Kind::Ack(ack)) })) => {
                        self.ack(&ack).await;
                    }
                    Some(Ok(_)) => {
                        let _ = self.tx.send(Err(GatewayError::ProtocolViolation(
                            "only acks may follow the Hello".to_owned(),
                        ))).await;
                        return;
                    }
                    None | Some(Err(_)) => return,
                },
                () = &mut changed => {}
                () = self.tx.closed() => return,
                () = engine.closed() => return,
            }
        }
    }

    /// Sends one delivery as the faults on deliveries make it; `false` once
    /// the subscriber is gone. A held delivery is sent later by a task of
    /// its own, so the stream goes on meanwhile.
    async fn deliver(&self, leased: &Leased, position: u64) -> bool {
        let mut delivery = super::delivery_message(leased);
        // The faults of the session the application was submitted in, unless
        // the subscriber named its own.
        let session = self.ctx.session().or(leased.pending.session.as_deref());
        let planned =
            super::delivery_faults::plan(self.engine, self.provider, session, &mut delivery);
        let outgoing = Outgoing {
            engine: self.engine.clone(),
            provider: self.provider.to_owned(),
            connection: self.connection,
            session: leased
                .pending
                .session
                .as_deref()
                .unwrap_or_default()
                .to_owned(),
            position,
            copies: planned.copies,
            message: SubscribeResponse {
                kind: Some(subscribe_response::Kind::Delivery(delivery)),
            },
        };
        if self.ctx.session.is_none()
            && let Some(session) = &leased.pending.session
        {
            let mut delivered_in = self.delivered_in();
            if delivered_in.len() >= MAX_REMEMBERED {
                delivered_in.clear();
            }
            delivered_in.insert(leased.pending.message_id.clone(), session.clone());
        }
        if planned.hold.is_none() {
            return outgoing.send(self.tx).await;
        }
        let tx = self.tx.clone();
        tokio::spawn(async move {
            if super::delivery_faults::held(planned.hold, tx.closed()).await {
                outgoing.send(&tx).await;
            }
        });
        true
    }

    fn delivered_in(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<str>>> {
        self.delivered_in
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies an ack from the stream; a bad one is logged and journaled,
    /// and the stream goes on.
    async fn ack(&self, ack: &shep_proto::provider::v1::Ack) {
        let acknowledged = super::settle_ack(self.engine, self.provider, ack)
            .await
            .map(|(settled, _)| settled);
        // The stream's session, or else the acked delivery's: a provider
        // without the header acks in the session of the application's
        // submitter.
        let acked = normal_uuid(&ack.message_id).unwrap_or_else(|| ack.message_id.clone());
        let delivered_in = self.delivered_in().remove(&acked);
        let session = self
            .ctx
            .session()
            .or(delivered_in.as_deref())
            .unwrap_or_default()
            .to_owned();
        self.engine.toolkit().exchanges.record(|| {
            let mut record = ExchangeRecord {
                session,
                rpc: RPC.to_owned(),
                hop: "delivery",
                message_id: ack.message_id.clone(),
                subject: self.provider.to_owned(),
                request: Some(any("shep.provider.v1.Ack", ack)),
                ..ExchangeRecord::default()
            };
            if let Err(error) = &acknowledged {
                record.failed(&crate::error::into_status(error.clone()));
            }
            record
        });
        if let Err(error) = acknowledged {
            tracing::warn!(provider = self.provider, connection = self.connection, error = %with_causes(&error), "acknowledgement ignored");
        }
    }
}

#[cfg(test)]
mod tests;
