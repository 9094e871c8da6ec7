//! Provider queues on the shared stream: each operation on a queue is a
//! command published to `<prefix>.queue.<provider>`; every node applies the
//! commands in stream order to its replica (the memory backend's queue), so
//! every replica decides the same outcome, and the node that published a
//! command reads its outcome from its own replica.
//!
//! Time is the wall clock, written into the commands (a lease's end, an
//! expiry's "now"), so replicas compare the same numbers. Connections are
//! told apart across nodes by the node's id in their upper 32 bits.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use prost::Message;
use shep_proto::envelope::v1::SignedEnvelope;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio::time::Instant;

use super::{Log, PublishFailure, untoken};
use crate::storage::StorageError;
use crate::storage::memory::MemoryQueue;
use crate::storage::queue::{DeliveryQueues, Filter, Leased, Pending, ProviderQueue, Settled};

/// A command on one provider's queue.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Command {
    /// The node that published it (its outcome is read there).
    #[prost(uint32, tag = "1")]
    node: u32,
    #[prost(oneof = "Op", tags = "2, 3, 4, 5, 6, 7")]
    op: Option<Op>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Op {
    #[prost(message, tag = "2")]
    Push(Push),
    #[prost(message, tag = "3")]
    Take(Take),
    #[prost(message, tag = "4")]
    Acknowledge(Acknowledge),
    #[prost(message, tag = "5")]
    Release(Release),
    #[prost(message, tag = "6")]
    Expire(Expire),
    #[prost(string, tag = "7")]
    Requeue(String),
}

#[derive(Clone, PartialEq, Message)]
struct Push {
    #[prost(string, tag = "1")]
    message_id: String,
    #[prost(string, tag = "2")]
    service_id: String,
    #[prost(string, tag = "3")]
    correlation_id: String,
    #[prost(message, optional, tag = "4")]
    envelope: Option<SignedEnvelope>,
    #[prost(string, optional, tag = "5")]
    session: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Take {
    /// The node-qualified connection; absent for a pull.
    #[prost(uint64, optional, tag = "1")]
    connection: Option<u64>,
    #[prost(uint64, tag = "2")]
    max_in_flight: u64,
    #[prost(string, repeated, tag = "3")]
    service_ids: Vec<String>,
    #[prost(string, tag = "4")]
    correlation_id: String,
    #[prost(string, optional, tag = "5")]
    session: Option<String>,
    /// The lease's end, Unix milliseconds.
    #[prost(uint64, tag = "6")]
    until_ms: u64,
}

#[derive(Clone, PartialEq, Message)]
struct Acknowledge {
    #[prost(string, tag = "1")]
    message_id: String,
    #[prost(bool, tag = "2")]
    accepted: bool,
    #[prost(bool, tag = "3")]
    resend: bool,
    #[prost(uint32, tag = "4")]
    max_attempts: u32,
}

#[derive(Clone, PartialEq, Message)]
struct Release {
    #[prost(uint64, tag = "1")]
    connection: u64,
    #[prost(uint32, tag = "2")]
    max_attempts: u32,
}

#[derive(Clone, PartialEq, Message)]
struct Expire {
    /// Unix milliseconds.
    #[prost(uint64, tag = "1")]
    now_ms: u64,
    #[prost(uint32, tag = "2")]
    max_attempts: u32,
}

/// What applying a command decided, kept for the node that published it.
#[derive(Debug)]
enum Outcome {
    Pushed,
    Taken(Option<Pending>),
    Settled(Option<Settled>),
    Released(Vec<(String, Settled)>),
    Requeued(bool),
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .unwrap_or(0)
}

/// Every provider's queue on the stream.
#[derive(Debug)]
pub struct JetStreamQueues {
    log: Log,
    queues: DashMap<String, Arc<JetStreamQueue>>,
    /// Outcomes of this node's commands, by stream sequence, until read.
    outcomes: Arc<DashMap<u64, Outcome>>,
    /// Where wall-clock milliseconds sit on the replica queues' clock: every
    /// replica compares lease ends with expiry times as the same numbers.
    base: Instant,
}

impl JetStreamQueues {
    pub(crate) fn new(log: Log) -> Self {
        Self {
            log,
            queues: DashMap::new(),
            outcomes: Arc::default(),
            base: Instant::now(),
        }
    }

    pub(crate) fn jetstream_queue(&self, provider: &str) -> Arc<JetStreamQueue> {
        self.queues
            .entry(provider.to_owned())
            .or_insert_with(|| {
                Arc::new(JetStreamQueue {
                    log: self.log.clone(),
                    provider: provider.to_owned(),
                    replica: MemoryQueue::default(),
                    settled: std::sync::Mutex::default(),
                    changed: Notify::new(),
                    outcomes: self.outcomes.clone(),
                    base: self.base,
                })
            })
            .value()
            .clone()
    }

    /// Applies a command of `<prefix>.queue.<token>` at `sequence`.
    pub(crate) fn apply(
        &self,
        token: &str,
        payload: &[u8],
        sequence: u64,
    ) -> Result<(), StorageError> {
        let provider = untoken(token).ok_or_else(|| {
            StorageError::backend(
                "apply a queue command",
                format!("bad subject token `{token}`"),
            )
        })?;
        let command = Command::decode(payload)
            .map_err(|error| StorageError::backend("decode a queue command", error))?;
        let queue = self.jetstream_queue(&provider);
        let outcome = queue.apply(command.op);
        if command.node == self.log.node()
            && let Some(outcome) = outcome
        {
            self.outcomes.insert(sequence, outcome);
        }
        // Whatever changed, a waiting consumer here looks again.
        queue.changed.notify_waiters();
        Ok(())
    }
}

#[async_trait::async_trait]
impl DeliveryQueues for JetStreamQueues {
    fn queue(&self, provider: &str) -> Arc<dyn ProviderQueue> {
        self.jetstream_queue(provider)
    }

    async fn queues(&self) -> Result<Vec<(String, Arc<dyn ProviderQueue>)>, StorageError> {
        Ok(self
            .queues
            .iter()
            .map(|entry| {
                let queue: Arc<dyn ProviderQueue> = entry.value().clone();
                (entry.key().clone(), queue)
            })
            .collect())
    }
}

/// One provider's queue on the stream.
#[derive(Debug)]
pub struct JetStreamQueue {
    log: Log,
    provider: String,
    replica: MemoryQueue,
    /// Requests settled by an acknowledgement (delivered or refused for
    /// good): the reconciler never pushes them again.
    settled: std::sync::Mutex<std::collections::HashSet<String>>,
    changed: Notify,
    outcomes: Arc<DashMap<u64, Outcome>>,
    base: Instant,
}

impl JetStreamQueue {
    /// Whether `message_id` was ever queued here and not lost: queued,
    /// leased, a dead letter, or settled by an acknowledgement.
    pub(crate) fn knows(&self, message_id: &str) -> bool {
        self.replica.holds(message_id)
            || self.replica.is_dead(message_id)
            || self
                .settled
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .contains(message_id)
    }

    /// A wall-clock time on the replica's clock.
    fn at(&self, unix_ms: u64) -> Instant {
        self.base + Duration::from_millis(unix_ms)
    }

    /// This node's connection `connection`, told apart from other nodes'.
    fn qualified(&self, connection: u64) -> u64 {
        (u64::from(self.log.node()) << 32) | (connection & 0xffff_ffff)
    }

    fn apply(&self, op: Option<Op>) -> Option<Outcome> {
        let outcome = match op? {
            Op::Push(push) => {
                self.replica.push_ready(Pending {
                    message_id: push.message_id,
                    service_id: push.service_id,
                    correlation_id: push.correlation_id,
                    envelope: Arc::new(push.envelope.unwrap_or_default()),
                    attempts: 0,
                    session: push.session.map(Arc::from),
                });
                Outcome::Pushed
            }
            Op::Take(take) => {
                let filter = Filter {
                    service_ids: take.service_ids,
                    correlation_id: take.correlation_id,
                    session: take.session.map(Arc::from),
                };
                let leased = self.replica.take_until(
                    take.connection,
                    usize::try_from(take.max_in_flight).unwrap_or(usize::MAX),
                    &filter,
                    self.at(take.until_ms),
                );
                Outcome::Taken(leased.map(|leased| leased.pending))
            }
            Op::Acknowledge(ack) => {
                let settled = self.replica.acknowledge_now(
                    &ack.message_id,
                    ack.accepted,
                    ack.resend,
                    ack.max_attempts,
                );
                if matches!(settled, Some(Settled::Delivered | Settled::NotDelivered)) {
                    self.settled
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .insert(ack.message_id);
                }
                Outcome::Settled(settled)
            }
            Op::Release(release) => Outcome::Released(
                self.replica
                    .release_connection_now(release.connection, release.max_attempts),
            ),
            Op::Expire(expire) => Outcome::Released(
                self.replica
                    .expire_now(self.at(expire.now_ms), expire.max_attempts),
            ),
            Op::Requeue(message_id) => Outcome::Requeued(self.replica.requeue_now(&message_id)),
        };
        Some(outcome)
    }

    /// Publishes `op` and returns what applying it decided.
    async fn command(&self, op: Op, dedup: Option<&str>) -> Result<Outcome, StorageError> {
        let payload = Command {
            node: self.log.node(),
            op: Some(op),
        }
        .encode_to_vec();
        let (sequence, duplicate) = self
            .log
            .publish(self.log.queue_subject(&self.provider), payload, dedup, None)
            .await
            .map_err(|failure| match failure {
                PublishFailure::Failed(error) => error,
                PublishFailure::Conflict => {
                    StorageError::backend("publish a queue command", "an unexpected sequence check")
                }
            })?;
        if duplicate {
            // Stored before (a push retried): its outcome was taken then.
            return Ok(Outcome::Pushed);
        }
        self.log.applied(sequence).await?;
        self.outcomes
            .remove(&sequence)
            .map(|(_, outcome)| outcome)
            .ok_or_else(|| {
                StorageError::backend("read a queue command's outcome", "no outcome recorded")
            })
    }
}

fn unexpected(outcome: Outcome) -> StorageError {
    StorageError::backend(
        "read a queue command's outcome",
        format!("an outcome of another command: {outcome:?}"),
    )
}

#[async_trait::async_trait]
impl ProviderQueue for JetStreamQueue {
    fn changed(&self) -> Notified<'_> {
        self.changed.notified()
    }

    async fn push(&self, pending: Pending) -> Result<(), StorageError> {
        let dedup = format!("push:{}:{}", self.provider, pending.message_id);
        let push = Push {
            message_id: pending.message_id,
            service_id: pending.service_id,
            correlation_id: pending.correlation_id,
            envelope: Some((*pending.envelope).clone()),
            session: pending.session.map(|session| session.to_string()),
        };
        match self.command(Op::Push(push), Some(&dedup)).await? {
            Outcome::Pushed => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn take(
        &self,
        connection: Option<u64>,
        max_in_flight: usize,
        filter: &Filter,
        lease: Duration,
    ) -> Result<Option<Leased>, StorageError> {
        let connection = connection.map(|id| self.qualified(id));
        // Nothing to take here means nothing to take anywhere, up to the
        // replica's lag: a waiting consumer is woken when that changes.
        if !self.replica.could_take(connection, max_in_flight, filter) {
            return Ok(None);
        }
        let take = Take {
            connection,
            max_in_flight: max_in_flight as u64,
            service_ids: filter.service_ids.clone(),
            correlation_id: filter.correlation_id.clone(),
            session: filter.session.as_deref().map(str::to_owned),
            until_ms: unix_ms(SystemTime::now() + lease),
        };
        let started = Instant::now();
        match self.command(Op::Take(take), None).await? {
            Outcome::Taken(pending) => Ok(pending.map(|pending| Leased {
                pending,
                until: started + lease,
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn acknowledge(
        &self,
        message_id: &str,
        accepted: bool,
        resend: bool,
        max_attempts: u32,
    ) -> Result<Option<Settled>, StorageError> {
        if !self.replica.holds(message_id) {
            // Settled already, a dead letter, or never queued: nothing to publish.
            self.log.catch_up().await?;
            if !self.replica.holds(message_id) {
                return Ok(None);
            }
        }
        let ack = Acknowledge {
            message_id: message_id.to_owned(),
            accepted,
            resend,
            max_attempts,
        };
        match self.command(Op::Acknowledge(ack), None).await? {
            Outcome::Settled(settled) => Ok(settled),
            other => Err(unexpected(other)),
        }
    }

    async fn release_connection(
        &self,
        connection: u64,
        max_attempts: u32,
    ) -> Result<Vec<(String, Settled)>, StorageError> {
        let release = Release {
            connection: self.qualified(connection),
            max_attempts,
        };
        match self.command(Op::Release(release), None).await? {
            Outcome::Released(settled) => Ok(settled),
            other => Err(unexpected(other)),
        }
    }

    async fn expire(
        &self,
        now: Instant,
        max_attempts: u32,
    ) -> Result<Vec<(String, Settled)>, StorageError> {
        // `now` on the tokio clock, as the wall clock.
        let wall = match now.checked_duration_since(Instant::now()) {
            Some(ahead) => SystemTime::now() + ahead,
            None => SystemTime::now() - Instant::now().duration_since(now),
        };
        let now_ms = unix_ms(wall);
        if !self.replica.has_expired(self.at(now_ms)) {
            return Ok(Vec::new());
        }
        let expire = Expire {
            now_ms,
            max_attempts,
        };
        match self.command(Op::Expire(expire), None).await? {
            Outcome::Released(settled) => Ok(settled),
            other => Err(unexpected(other)),
        }
    }

    async fn dead_letters(&self) -> Result<Vec<Pending>, StorageError> {
        self.replica.dead_letters().await
    }

    async fn requeue(&self, message_id: &str) -> Result<bool, StorageError> {
        if !self.replica.is_dead(message_id) {
            return Ok(false);
        }
        match self
            .command(Op::Requeue(message_id.to_owned()), None)
            .await?
        {
            Outcome::Requeued(requeued) => Ok(requeued),
            other => Err(unexpected(other)),
        }
    }

    async fn depth(&self) -> Result<(usize, usize, usize), StorageError> {
        self.replica.depth().await
    }
}
