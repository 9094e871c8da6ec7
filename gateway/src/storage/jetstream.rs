//! The JetStream backend: several gateway nodes share one NATS JetStream
//! stream, and each node keeps a replica of what the stream says.
//!
//! One stream, `<PREFIX>_LOG`, holds every change, under two kinds of subject
//! (`<prefix>.exchange.>` is the toolkit's, see `crate::toolkit::shared`):
//! - `<prefix>.app.<message id>`: an application's acceptance, then each of
//!   its status changes (the journal's [`Entry`] records);
//! - `<prefix>.queue.<provider id>`: the commands on a provider's queue
//!   (push, take, acknowledge, release, expire, requeue).
//!
//! Every node follows the stream from its start with an ordered consumer and
//! applies each message, in stream order, to its replica: the in-memory store
//! and queues of the [`memory`](super::memory) backend. So every node answers
//! `GetStatus`, `History` and `Watch` from the same state, the stream
//! sequence is the gateway-wide resume sequence, and a queue command's outcome
//! (which request a take leased, what an ack settled) is the same on every
//! replica: the node that published a command reads its outcome from its own
//! replica once the command is applied there.
//!
//! Writers never overwrite each other:
//! - an acceptance is published with `Nats-Expected-Last-Subject-Sequence: 0`
//!   on its application's subject (only the first of two nodes accepting the
//!   same message id succeeds; the other finds the existing one and answers
//!   as a re-send or a duplicate). The check holds for ever, unlike
//!   `Nats-Msg-Id` de-duplication and its window, which serves the queue
//!   pushes (a push retried after a lost acknowledgement is stored once);
//! - a status change is published with the subject's last sequence as the
//!   replica saw it; when another node changed the application first, the
//!   update runs again on the newer state;
//! - queue commands need no such check: their outcome is decided by applying
//!   them in stream order.
//!
//! A node killed mid-Submit can leave an application half done: accepted
//! without its first event (no receipt was given: it is forgotten), or with
//! it but never queued (it is queued). Every node's [`reconcile`] loop finds
//! those once they are older than any Submit in progress.
//!
//! Nothing is visible before JetStream stored it: a receipt, an event on the
//! live feed or a lease follows the publish acknowledgement. When NATS cannot
//! be reached, writes fail with [`StorageError::Unavailable`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use async_nats::{HeaderMap, header};
use bytes::Bytes;
use futures_util::StreamExt as _;
use prost::Message as _;
use tokio::sync::watch;

use super::journal::{Entry, Journal, OnCommit, Record, Ticket};
use super::{Storage, StorageError};

mod queues;
mod reconcile;
mod store;
mod verify;
// Always built: the end-to-end tests and the benchmark start servers too.
pub mod test_server;
#[cfg(test)]
mod tests;

pub use queues::{JetStreamQueue, JetStreamQueues};
pub use store::JetStreamStore;
pub use verify::{Verified, verify};

/// How long a write waits for JetStream's acknowledgement, and a replica
/// for the stream to reach a sequence, before it gives up.
const PATIENCE: Duration = Duration::from_secs(10);
/// How long a write waits for its sequence on this node before it asks the
/// follower to follow again.
const STALL: Duration = Duration::from_secs(2);

/// Where the shared stream is and how it is kept.
#[derive(Debug, Clone)]
pub struct JetStreamOptions {
    /// The NATS server(s), e.g. `nats://127.0.0.1:4222` (several separated
    /// by commas).
    pub url: String,
    /// Names the stream (`<PREFIX>_LOG`) and its subjects (`<prefix>.>`):
    /// gateways with the same prefix share their state.
    pub prefix: String,
    /// Copies of the stream on a JetStream cluster (1 on a single server).
    pub replicas: usize,
}

impl Default for JetStreamOptions {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            prefix: "shep".to_owned(),
            replicas: 1,
        }
    }
}

/// Connects to NATS, creates the stream if it is missing, and catches this
/// node's replica up with it before returning.
pub async fn open(options: &JetStreamOptions) -> Result<Storage, StorageError> {
    let log = Log::connect(options).await?;
    let store = Arc::new(JetStreamStore::new(log.clone()));
    let queues = Arc::new(JetStreamQueues::new(log.clone()));
    log.follow(store.clone(), queues.clone()).await?;
    let reconciler = tokio::spawn(reconcile::run(store.clone(), queues.clone()));
    log.keep(reconciler.abort_handle());
    let journal: Arc<dyn Journal> = Arc::new(Link(log));
    Ok(Storage::new(store, queues, journal))
}

/// Connects to the NATS server(s) of `url` (several separated by commas; the
/// client fails over between them) as `name`, and waits a little for the
/// first connection.
pub(crate) async fn connect(url: &str, name: &str) -> Result<async_nats::Client, StorageError> {
    let unavailable = |error| StorageError::unavailable("connect to NATS", error);
    let servers = url
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::parse::<async_nats::ServerAddr>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| StorageError::unavailable("connect to NATS", error))?;
    let client = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        // Answer "unavailable" rather than queue work while cut off.
        .retry_on_initial_connect()
        .connect(servers.as_slice())
        .await
        .map_err(unavailable)?;
    // The first connection is made in the background with retries: wait for
    // it, a little.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while client.connection_state() != async_nats::connection::State::Connected {
        if tokio::time::Instant::now() > deadline {
            return Err(StorageError::unavailable(
                "connect to NATS",
                format!("no NATS server answered at {url}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(client)
}

/// Background tasks (followers, watchers) that end when their owner closes.
#[derive(Debug, Default)]
pub(crate) struct Tasks(std::sync::Mutex<Vec<tokio::task::AbortHandle>>);

impl Tasks {
    pub(crate) fn keep(&self, task: tokio::task::AbortHandle) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(task);
    }

    pub(crate) fn stop(&self) {
        for task in self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

/// The subject token of an id: the id itself when it is a safe token, else
/// `=` and its hex (no plain id contains `=`).
pub(crate) fn token(id: &str) -> String {
    if !id.is_empty()
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    {
        id.to_owned()
    } else {
        let mut token = String::with_capacity(1 + 2 * id.len());
        token.push('=');
        for byte in id.bytes() {
            token.push_str(&format!("{byte:02x}"));
        }
        token
    }
}

/// The id a [`token`] stands for.
pub(crate) fn untoken(token: &str) -> Option<String> {
    let Some(hex) = token.strip_prefix('=') else {
        return Some(token.to_owned());
    };
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The shared stream: publishing to it and following it.
#[derive(Clone)]
pub(crate) struct Log {
    client: async_nats::Client,
    context: jetstream::Context,
    stream_name: String,
    prefix: String,
    /// The last stream sequence this node's replica applied.
    applied: watch::Sender<u64>,
    /// Set when the follower stopped for good (a message it cannot apply).
    broken: Arc<AtomicBool>,
    /// Which message, and why.
    failure: Arc<std::sync::Mutex<Option<String>>>,
    closed: Arc<AtomicBool>,
    /// Asks the follower to drop its consumer and follow again from its
    /// last sequence: a write waits for its sequence too long (a consumer
    /// left stalled by a leader change).
    refollow: Arc<tokio::sync::Notify>,
    /// The follower and the reconciler, stopped on close.
    tasks: Arc<Tasks>,
    /// This node, in the queue commands it publishes.
    node: u32,
}

impl fmt::Debug for Log {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("JetStream")
            .field("stream", &self.stream_name)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// A failed publish, told apart where the caller cares.
pub(crate) enum PublishFailure {
    /// The subject's last sequence was not the one expected.
    Conflict,
    Failed(StorageError),
}

impl From<StorageError> for PublishFailure {
    fn from(error: StorageError) -> Self {
        Self::Failed(error)
    }
}

impl Log {
    async fn connect(options: &JetStreamOptions) -> Result<Self, StorageError> {
        let client = connect(&options.url, "shep-gateway").await?;
        let mut context = jetstream::new(client.clone());
        // Short tries while the stream is made: a cluster still electing
        // its leader lets a request time out.
        context.set_timeout(Duration::from_secs(2));
        let stream_name = format!("{}_LOG", options.prefix.to_uppercase());
        // Only the subjects written here: `<prefix>.exchange.>` belongs to
        // the toolkit's journal (`toolkit::shared`), and two streams cannot
        // share a subject.
        let config = stream::Config {
            name: stream_name.clone(),
            subjects: ["app", "queue", "forgotten"]
                .map(|kind| format!("{}.{kind}.>", options.prefix))
                .to_vec(),
            storage: stream::StorageType::File,
            num_replicas: options.replicas,
            duplicate_window: Duration::from_secs(120),
            ..stream::Config::default()
        };
        // A JetStream cluster that is still electing its leader answers
        // "unavailable" for a few seconds after it starts: wait for it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match context.get_or_create_stream(config.clone()).await {
                Ok(_) => {
                    context.set_timeout(PATIENCE);
                    break;
                }
                Err(error) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(%error, "JetStream not ready; trying again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(error) => {
                    return Err(StorageError::unavailable(
                        "create the JetStream stream",
                        error,
                    ));
                }
            }
        }
        Ok(Self {
            client,
            context,
            stream_name,
            prefix: options.prefix.clone(),
            applied: watch::channel(0).0,
            broken: Arc::new(AtomicBool::new(false)),
            failure: Arc::default(),
            closed: Arc::new(AtomicBool::new(false)),
            refollow: Arc::default(),
            tasks: Arc::default(),
            node: rand::random(),
        })
    }

    /// Stops the background tasks (on close).
    fn stop(&self) {
        self.closed.store(true, Ordering::Release);
        self.tasks.stop();
    }

    /// Keeps a background task, stopped on close.
    fn keep(&self, task: tokio::task::AbortHandle) {
        self.tasks.keep(task);
    }

    pub(crate) fn node(&self) -> u32 {
        self.node
    }

    pub(crate) fn app_subject(&self, message_id: &str) -> String {
        format!("{}.app.{}", self.prefix, token(message_id))
    }

    pub(crate) fn forgotten_subject(&self, message_id: &str) -> String {
        format!("{}.forgotten.{}", self.prefix, token(message_id))
    }

    pub(crate) fn queue_subject(&self, provider: &str) -> String {
        format!("{}.queue.{}", self.prefix, token(provider))
    }

    /// Fails at once when nothing more can be stored.
    fn check_usable(&self) -> Result<(), StorageError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Stopped);
        }
        if self.broken.load(Ordering::Acquire) {
            return Err(StorageError::unavailable(
                "follow the JetStream stream",
                "this node stopped following the stream",
            ));
        }
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(StorageError::unavailable(
                "reach NATS",
                "the connection to NATS is down",
            ));
        }
        Ok(())
    }

    /// Publishes `payload` to `subject` and returns its stream sequence once
    /// JetStream stored it.
    pub(crate) async fn publish(
        &self,
        subject: String,
        payload: Vec<u8>,
        message_id: Option<&str>,
        expected_last: Option<u64>,
    ) -> Result<(u64, bool), PublishFailure> {
        self.check_usable()?;
        let mut headers = HeaderMap::new();
        if let Some(id) = message_id {
            headers.insert(header::NATS_MESSAGE_ID, id);
        }
        if let Some(last) = expected_last {
            headers.insert(
                header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                last.to_string().as_str(),
            );
        }
        let failed = |error: async_nats::jetstream::context::PublishError| match error.kind() {
            PublishErrorKind::WrongLastSequence => PublishFailure::Conflict,
            _ => PublishFailure::Failed(StorageError::unavailable("publish to JetStream", error)),
        };
        let acknowledged = self
            .context
            .publish_with_headers(subject, headers, Bytes::from(payload))
            .await
            .map_err(failed)?
            .await
            .map_err(failed)?;
        Ok((acknowledged.sequence, acknowledged.duplicate))
    }

    /// The stream's last sequence, as JetStream answers now.
    pub(crate) async fn last_sequence(&self) -> Result<u64, StorageError> {
        self.check_usable()?;
        let stream = self
            .context
            .get_stream(&self.stream_name)
            .await
            .map_err(|error| StorageError::unavailable("read the stream's state", error))?;
        let info = stream
            .get_info()
            .await
            .map_err(|error| StorageError::unavailable("read the stream's state", error))?;
        Ok(info.state.last_sequence)
    }

    /// Waits until this node's replica applied `sequence`.
    pub(crate) async fn applied(&self, sequence: u64) -> Result<(), StorageError> {
        let mut applied = self.applied.subscribe();
        let broken = &self.broken;
        let mut reached = tokio::time::timeout(
            STALL,
            applied.wait_for(|at| *at >= sequence || broken.load(Ordering::Acquire)),
        )
        .await
        .map(|outcome| outcome.map(|_| ()));
        if reached.is_err() {
            // Stored, yet not here after a while: the consumer may have
            // stalled. Follow again, and wait the rest of the patience.
            self.refollow.notify_one();
            reached = tokio::time::timeout(
                PATIENCE - STALL,
                applied.wait_for(|at| *at >= sequence || broken.load(Ordering::Acquire)),
            )
            .await
            .map(|outcome| outcome.map(|_| ()));
        }
        match reached {
            _ if self.broken.load(Ordering::Acquire) => Err(StorageError::unavailable(
                "follow the JetStream stream",
                "this node stopped following the stream",
            )),
            Ok(Ok(_)) => Ok(()),
            _ => Err(StorageError::unavailable(
                "follow the JetStream stream",
                format!("the replica did not reach sequence {sequence} in {PATIENCE:?}"),
            )),
        }
    }

    /// Waits until this node's replica holds everything stored so far.
    pub(crate) async fn catch_up(&self) -> Result<(), StorageError> {
        let last = self.last_sequence().await?;
        self.applied(last).await
    }

    /// Removes every message of `subject` from the stream.
    pub(crate) async fn purge(&self, subject: String) -> Result<(), StorageError> {
        self.check_usable()?;
        let stream = self
            .context
            .get_stream(&self.stream_name)
            .await
            .map_err(|error| StorageError::unavailable("purge from the stream", error))?;
        stream
            .purge()
            .filter(subject)
            .await
            .map_err(|error| StorageError::unavailable("purge from the stream", error))?;
        Ok(())
    }

    /// Starts following the stream into `store` and `queues`, and waits
    /// until everything stored before the call is applied.
    async fn follow(
        &self,
        store: Arc<JetStreamStore>,
        queues: Arc<JetStreamQueues>,
    ) -> Result<(), StorageError> {
        // The first consumer is made here, so a stream that cannot be
        // followed fails the start rather than a later request.
        let first = self.ordered_from(1, 0).await?;
        let log = self.clone();
        let task = tokio::spawn(async move {
            let mut messages = Some(first);
            for round in 1_u32.. {
                let current = match messages.take() {
                    Some(current) => current,
                    None => {
                        let next = *log.applied.borrow() + 1;
                        match log.ordered_from(next, round).await {
                            Ok(current) => current,
                            Err(error) => {
                                tracing::warn!(%error, "following the JetStream stream; trying again");
                                tokio::time::sleep(Duration::from_millis(500)).await;
                                continue;
                            }
                        }
                    }
                };
                let keep_going = tokio::select! {
                    keep_going = log.apply_all(current, &store, &queues) => keep_going,
                    () = log.refollow.notified() => {
                        tracing::warn!("the stream's consumer stalled; following again");
                        true
                    }
                };
                if !keep_going {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        self.keep(task.abort_handle());
        self.catch_up().await
    }

    /// An ordered consumer of the stream from `sequence` on.
    async fn ordered_from(
        &self,
        sequence: u64,
        round: u32,
    ) -> Result<jetstream::consumer::pull::Ordered, StorageError> {
        fn failed(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StorageError {
            StorageError::unavailable("follow the stream", error)
        }
        let stream = self
            .context
            .get_stream(&self.stream_name)
            .await
            .map_err(failed)?;
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                name: Some(format!("{}-replica-{:08x}-{round}", self.prefix, self.node)),
                deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: sequence,
                },
                ..Default::default()
            })
            .await
            .map_err(failed)?;
        consumer.messages().await.map_err(failed)
    }

    /// Applies what `messages` delivers, in order, until it fails (`true`:
    /// follow again from the next sequence) or a message cannot be applied
    /// (`false`: this node stops following).
    async fn apply_all(
        &self,
        mut messages: jetstream::consumer::pull::Ordered,
        store: &JetStreamStore,
        queues: &JetStreamQueues,
    ) -> bool {
        let app_prefix = format!("{}.app.", self.prefix);
        let queue_prefix = format!("{}.queue.", self.prefix);
        let forgotten_prefix = format!("{}.forgotten.", self.prefix);
        while let Some(message) = messages.next().await {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    // NATS restarted or cut off: follow again from where
                    // this replica is, with a new consumer.
                    tracing::warn!(%error, "following the JetStream stream");
                    return true;
                }
            };
            let Ok(sequence) = message.info().map(|info| info.stream_sequence) else {
                continue;
            };
            if sequence <= *self.applied.borrow() {
                continue;
            }
            let subject = message.subject.as_str();
            let applied = if let Some(rest) = subject.strip_prefix(&app_prefix) {
                Entry::decode_from(&message.payload)
                    .and_then(|entry| store.apply(rest, entry, sequence))
            } else if let Some(rest) = subject.strip_prefix(&queue_prefix) {
                queues.apply(rest, &message.payload, sequence)
            } else if let Some(rest) = subject.strip_prefix(&forgotten_prefix) {
                store.forgotten(rest)
            } else {
                Ok(())
            };
            if let Err(error) = applied {
                // A replica that skipped a message would answer wrongly
                // from then on: stop, and refuse work, rather than drift.
                tracing::error!(%error, sequence, subject, "a stream message cannot be applied; this node stops following");
                *self
                    .failure
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) =
                    Some(format!("message {sequence} on `{subject}`: {error}"));
                self.broken.store(true, Ordering::Release);
                // Wake whoever waits for this sequence: it will not come.
                self.applied.send_modify(|_| {});
                return false;
            }
            self.applied.send_replace(sequence);
        }
        true
    }
}

/// What the stream holds for an application: a journal entry, without the
/// chain (JetStream keeps the order and the integrity).
trait Decode: Sized {
    fn decode_from(payload: &[u8]) -> Result<Self, StorageError>;
}

impl Decode for Entry {
    fn decode_from(payload: &[u8]) -> Result<Self, StorageError> {
        Record::decode(payload)
            .map_err(|error| StorageError::backend("decode a stream message", error))?
            .entry
            .ok_or_else(|| StorageError::backend("decode a stream message", "an empty record"))
    }
}

/// The journal side of the backend: durability and shutdown. Writes go to
/// the stream through the store and the queues, not through `append`.
struct Link(Log);

impl fmt::Debug for Link {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

#[async_trait::async_trait]
impl Journal for Link {
    fn append(&self, _entry: Entry) -> Ticket {
        Ticket::failed(StorageError::backend(
            "append to the journal",
            "the JetStream backend writes through its store",
        ))
    }

    fn on_commit(&self, _hook: OnCommit) {}

    fn is_durable(&self) -> bool {
        true
    }

    fn backend(&self) -> &'static str {
        "jetstream"
    }

    fn serving(&self) -> bool {
        self.0.check_usable().is_ok()
    }

    async fn close(&self) {
        self.0.stop();
        // Every write waited for its acknowledgement: nothing is left to store.
        let _ = self.0.client.flush().await;
    }
}

#[cfg(test)]
mod token_tests {
    use super::{token, untoken};

    #[test]
    fn ids_become_subject_tokens_and_back() {
        for id in ["arm-rshep-sko", "1f0c-aa_9", "a.b", "a b*>", "", "=41"] {
            let token = token(id);
            assert!(
                !token.is_empty() && !token.contains(['.', '*', '>', ' ']),
                "{token}"
            );
            assert_eq!(untoken(&token).as_deref(), Some(id));
        }
        assert_eq!(token("arm-rshep-sko"), "arm-rshep-sko");
    }
}
