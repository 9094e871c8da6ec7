//! The exchange journal shared by a cluster: a stream, `<PREFIX>_EXCHANGES`,
//! keeping the last `toolkit.exchanges_capacity` messages (oldest discarded),
//! under two subjects:
//! - `<prefix>.exchange.node.<node>`: an exchange a node recorded (the
//!   `shep.admin.v1.Exchange`, numbered by the stream);
//! - `<prefix>.exchange.reset`: a Reset of the journal, the session's id as
//!   payload (empty: all of it).
//!
//! Recording stays cheap: the call hands the exchange to a bounded queue, and
//! one task encodes it and publishes it with a plain NATS publish, without
//! waiting for JetStream's acknowledgement. An exchange lost that way (the
//! queue full, NATS cut off) is missing from every node's journal. Every node
//! follows the stream with an ordered consumer into its local
//! [`Exchanges`](crate::toolkit::Exchanges), so ListExchanges and
//! VerifyExchanges read local memory once [`Journal::catch_up`] has waited for
//! this node's own exchanges and for the stream's last message.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt as _;
use prost::Message as _;
use shep_proto::admin::v1::Exchange;
use tokio::sync::{mpsc, watch};

use super::PATIENCE;
use crate::storage::StorageError;
use crate::storage::jetstream::JetStreamOptions;
use crate::toolkit::Toolkit;
use crate::toolkit::exchanges::Outbox;

/// Exchanges waiting to be published; more are dropped.
const QUEUE: usize = 4096;

/// How long a reader waits for this node's own exchanges to come back before
/// taking the missing ones as lost.
const OWN_PATIENCE: Duration = Duration::from_secs(2);

/// The hot path's end: a queue to the publishing task.
#[derive(Debug)]
struct Publisher {
    queue: mpsc::Sender<Exchange>,
    /// Exchanges queued, and those given up on (never coming back).
    sent: AtomicU64,
    lost: AtomicU64,
}

impl Outbox for Publisher {
    fn send(&self, exchange: Exchange) {
        match self.queue.try_send(exchange) {
            Ok(()) => {
                self.sent.fetch_add(1, Ordering::AcqRel);
            }
            Err(_) => tracing::debug!("the exchange queue is full: an exchange is not recorded"),
        }
    }
}

/// This node's side of the shared journal.
#[derive(Debug)]
pub(super) struct Journal {
    context: jetstream::Context,
    stream_name: String,
    reset_subject: String,
    publisher: Arc<Publisher>,
    /// The last stream sequence applied here.
    applied: watch::Sender<u64>,
    /// How many of this node's own exchanges came back and were applied.
    own_applied: watch::Sender<u64>,
}

impl Journal {
    /// Creates the stream if it is missing and starts publishing to it and
    /// following it into `toolkit`'s exchanges; returns the journal and its
    /// tasks.
    pub(super) async fn open(
        context: &jetstream::Context,
        options: &JetStreamOptions,
        node: &str,
        capacity: usize,
        toolkit: Arc<Toolkit>,
    ) -> Result<(Self, Vec<tokio::task::AbortHandle>), StorageError> {
        let stream_name = format!("{}_EXCHANGES", options.prefix.to_uppercase());
        const WHAT: &str = "open the exchange journal";
        let stream = context
            .get_or_create_stream(stream::Config {
                name: stream_name.clone(),
                subjects: vec![format!("{}.exchange.>", options.prefix)],
                storage: stream::StorageType::File,
                num_replicas: options.replicas,
                max_messages: i64::try_from(capacity).unwrap_or(i64::MAX),
                discard: stream::DiscardPolicy::Old,
                ..stream::Config::default()
            })
            .await
            .map_err(failed(WHAT))?;
        let own_subject = format!("{}.exchange.node.{node}", options.prefix);
        let reset_subject = format!("{}.exchange.reset", options.prefix);
        let (queue, mut queued) = mpsc::channel::<Exchange>(QUEUE);
        let publisher = Arc::new(Publisher {
            queue,
            sent: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        });
        let journal = Self {
            context: context.clone(),
            stream_name,
            reset_subject: reset_subject.clone(),
            publisher: publisher.clone(),
            applied: watch::channel(0).0,
            own_applied: watch::channel(0).0,
        };
        let client = context.client();
        let subject = own_subject.clone();
        let publishing = tokio::spawn(async move {
            while let Some(exchange) = queued.recv().await {
                let payload = Bytes::from(exchange.encode_to_vec());
                if let Err(error) = client.publish(subject.clone(), payload).await {
                    tracing::debug!(%error, "an exchange could not be published");
                    publisher.lost.fetch_add(1, Ordering::AcqRel);
                }
            }
        });
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                name: Some(format!("{}-exchanges-{node}", options.prefix)),
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(failed(WHAT))?;
        let mut messages = consumer.messages().await.map_err(failed(WHAT))?;
        let applied = journal.applied.clone();
        let own_applied = journal.own_applied.clone();
        let following = tokio::spawn(async move {
            let exchanges = &toolkit.exchanges;
            let mut last = 0;
            while let Some(message) = messages.next().await {
                let message = match message {
                    Ok(message) => message,
                    Err(error) => {
                        // The ordered consumer recreates itself; say so and go on.
                        tracing::warn!(%error, "following the exchange journal");
                        continue;
                    }
                };
                let Ok(sequence) = message.info().map(|info| info.stream_sequence) else {
                    continue;
                };
                if message.subject.as_str() == reset_subject {
                    let session = std::str::from_utf8(&message.payload).unwrap_or_default();
                    exchanges.clear((!session.is_empty()).then_some(session));
                } else {
                    match Exchange::decode(message.payload.as_ref()) {
                        Ok(mut exchange) => {
                            exchange.sequence = sequence;
                            exchanges.apply(exchange, sequence.saturating_sub(last + 1));
                        }
                        // A diagnostic journal: skip what cannot be read.
                        Err(error) => tracing::warn!(%error, sequence, "an unreadable exchange"),
                    }
                    if message.subject.as_str() == own_subject {
                        own_applied.send_modify(|count| *count += 1);
                    }
                }
                last = sequence;
                applied.send_replace(sequence);
            }
        });
        Ok((
            journal,
            vec![publishing.abort_handle(), following.abort_handle()],
        ))
    }

    /// Where the hot path sends this node's exchanges.
    pub(super) fn outbox(&self) -> Arc<dyn Outbox> {
        self.publisher.clone()
    }

    /// Waits until this node's own exchanges are back (the ones missing after
    /// a while are taken as lost) and the stream's last message is applied.
    pub(super) async fn catch_up(&self) -> Result<(), StorageError> {
        let sent = self.publisher.sent.load(Ordering::Acquire);
        let target = sent.saturating_sub(self.publisher.lost.load(Ordering::Acquire));
        let mut own = self.own_applied.subscribe();
        let back = tokio::time::timeout(OWN_PATIENCE, own.wait_for(|count| *count >= target))
            .await
            .is_ok_and(|waited| waited.is_ok());
        if !back {
            let seen = *own.borrow();
            let missing = target.saturating_sub(seen);
            tracing::warn!(
                missing,
                "exchanges this node recorded did not reach the shared journal"
            );
            self.publisher.lost.fetch_add(missing, Ordering::AcqRel);
        }
        const WHAT: &str = "read the exchange journal";
        let mut stream = self
            .context
            .get_stream(&self.stream_name)
            .await
            .map_err(failed(WHAT))?;
        let last = stream
            .info()
            .await
            .map_err(failed(WHAT))?
            .state
            .last_sequence;
        self.applied(last).await
    }

    /// Removes the exchanges of `session` (all for `None`) from every node's
    /// journal; returns once this node applied the removal.
    pub(super) async fn clear(&self, session: Option<&str>) -> Result<(), StorageError> {
        const WHAT: &str = "reset the exchange journal";
        let payload = Bytes::from(session.unwrap_or_default().to_owned());
        let acknowledged = self
            .context
            .publish(self.reset_subject.clone(), payload)
            .await
            .map_err(failed(WHAT))?
            .await
            .map_err(failed(WHAT))?;
        self.applied(acknowledged.sequence).await
    }

    async fn applied(&self, sequence: u64) -> Result<(), StorageError> {
        let mut applied = self.applied.subscribe();
        match tokio::time::timeout(PATIENCE, applied.wait_for(|at| *at >= sequence)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(StorageError::unavailable(
                "follow the exchange journal",
                format!("this node did not reach sequence {sequence} in {PATIENCE:?}"),
            )),
        }
    }
}

/// A StorageError::Unavailable maker for `operation`, for `map_err`.
fn failed<E>(operation: &'static str) -> impl Fn(E) -> StorageError
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    move |error| StorageError::unavailable(operation, error)
}
