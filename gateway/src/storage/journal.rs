//! The journal: every accepted application and every status change, in the
//! order the store applied them, durable before the caller answers.
//!
//! Each record carries the SHA-256 of the previous record, and its own hash
//! over that and its content, so an edited or removed entry breaks the chain
//! from there on (`shep journal verify`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use prost::Message;
use ring::digest::{SHA256, digest};
use shep_proto::envelope::v1::{SignedEnvelope, Subject};
use shep_proto::gateway::v1::StatusEvent;
use tokio::sync::oneshot;

use super::{Corruption, StorageError};

/// An application as accepted.
#[derive(Clone, PartialEq, Message)]
pub struct Accepted {
    #[prost(string, tag = "1")]
    pub message_id: String,
    #[prost(string, tag = "2")]
    pub service_id: String,
    #[prost(message, optional, tag = "3")]
    pub subject: Option<Subject>,
    #[prost(int32, tag = "4")]
    pub channel: i32,
    #[prost(string, tag = "5")]
    pub sender_id: String,
    #[prost(string, tag = "6")]
    pub provider_id: String,
    /// Unix time in nanoseconds.
    #[prost(int64, tag = "7")]
    pub accepted_at_nanos: i64,
    /// E.g. "5 working-days"; empty for none.
    #[prost(string, tag = "8")]
    pub deadline: String,
    #[prost(bool, tag = "9")]
    pub test: bool,
    #[prost(message, optional, tag = "10")]
    pub envelope: Option<SignedEnvelope>,
    #[prost(bytes = "vec", tag = "11")]
    pub body_digest: Vec<u8>,
    #[prost(string, tag = "12")]
    pub session_id: String,
    #[prost(string, tag = "13")]
    pub correlation_id: String,
    #[prost(string, tag = "14")]
    pub test_session: String,
    /// Unix time in nanoseconds; 0 for none.
    #[prost(int64, tag = "15")]
    pub due_at_nanos: i64,
}

/// A status change, with the application's state right after it.
#[derive(Clone, PartialEq, Message)]
pub struct Changed {
    #[prost(message, optional, tag = "1")]
    pub event: Option<StatusEvent>,
    #[prost(int32, tag = "2")]
    pub delivery_state: i32,
    #[prost(int32, tag = "3")]
    pub status: i32,
    #[prost(string, tag = "4")]
    pub registration_number: String,
    /// Unix seconds; 0 for none.
    #[prost(int64, tag = "5")]
    pub expected_at_secs: i64,
    /// Set when a provider report caused the change, for idempotent re-sends.
    #[prost(string, tag = "6")]
    pub report_sender: String,
    #[prost(string, tag = "7")]
    pub report_message_id: String,
    #[prost(bytes = "vec", tag = "8")]
    pub report_digest: Vec<u8>,
}

/// What a record says.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Entry {
    #[prost(message, tag = "4")]
    Accepted(Accepted),
    #[prost(message, tag = "5")]
    Changed(Changed),
}

/// One stored record: the entry, its place and the chain.
#[derive(Clone, PartialEq, Message)]
pub struct Record {
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub prev_hash: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub hash: Vec<u8>,
    #[prost(oneof = "Entry", tags = "4, 5")]
    pub entry: Option<Entry>,
}

impl Record {
    /// The record that follows `prev_hash` at `sequence`, hashed.
    pub(crate) fn chained(sequence: u64, prev_hash: Vec<u8>, entry: Entry) -> Self {
        let mut record = Self {
            sequence,
            prev_hash,
            hash: Vec::new(),
            entry: Some(entry),
        };
        record.hash = record.compute_hash();
        record
    }

    /// SHA-256 of the record with an empty `hash` field.
    pub(crate) fn compute_hash(&self) -> Vec<u8> {
        let mut unhashed = self.clone();
        unhashed.hash.clear();
        digest(&SHA256, &unhashed.encode_to_vec()).as_ref().to_vec()
    }
}

/// Checks a chain one record at a time, from the first, so a journal of any
/// length is checked in constant memory.
#[derive(Debug, Default)]
pub(crate) struct ChainCheck {
    sequence: u64,
    hash: Vec<u8>,
}

impl ChainCheck {
    /// A check that starts at `record` (not the first): its own hash is
    /// checked, its link to the record before it is taken on trust.
    pub(crate) fn starting_at(record: &Record) -> Result<Self, StorageError> {
        if record.compute_hash() != record.hash {
            return Err(StorageError::Corrupt {
                sequence: record.sequence,
                problem: Corruption::Edited,
            });
        }
        Ok(Self {
            sequence: record.sequence,
            hash: record.hash.clone(),
        })
    }

    /// Checks that `record` follows the records checked so far.
    pub(crate) fn next(&mut self, record: &Record) -> Result<(), StorageError> {
        let broken = |problem| StorageError::Corrupt {
            sequence: record.sequence,
            problem,
        };
        if record.sequence != self.sequence + 1 {
            return Err(broken(Corruption::Gap {
                previous: self.sequence,
            }));
        }
        if record.prev_hash != self.hash {
            return Err(broken(Corruption::Unlinked));
        }
        if record.compute_hash() != record.hash {
            return Err(broken(Corruption::Edited));
        }
        self.sequence = record.sequence;
        self.hash.clone_from(&record.hash);
        Ok(())
    }

    /// The last sequence and hash checked.
    pub(crate) fn last(self) -> (u64, Vec<u8>) {
        (self.sequence, self.hash)
    }
}

type Durable = Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send>>;

enum Wait {
    Done,
    Writer(oneshot::Receiver<Result<(), StorageError>>),
    Future(Durable),
}

/// Resolves when an entry (or a change) is durable.
pub struct Ticket(Wait);

impl fmt::Debug for Ticket {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.0 {
            Wait::Done => "done",
            Wait::Writer(_) | Wait::Future(_) => "waiting",
        };
        formatter.debug_tuple("Ticket").field(&state).finish()
    }
}

impl Ticket {
    /// A ticket already done: nothing to wait for (the memory backend, or a
    /// backend that stored the change before answering).
    pub fn done() -> Self {
        Self(Wait::Done)
    }

    /// A ticket already failed.
    pub fn failed(error: StorageError) -> Self {
        Self::from_future(async move { Err(error) })
    }

    /// A ticket a writer completes through `receiver`; a writer that drops
    /// it has stopped.
    pub fn from_writer(receiver: oneshot::Receiver<Result<(), StorageError>>) -> Self {
        Self(Wait::Writer(receiver))
    }

    /// A ticket done when `durable` resolves (e.g. a publish acknowledgement).
    pub fn from_future(
        durable: impl Future<Output = Result<(), StorageError>> + Send + 'static,
    ) -> Self {
        Self(Wait::Future(Box::pin(durable)))
    }

    /// Waits until the entry is durable.
    pub async fn durable(self) -> Result<(), StorageError> {
        match self.0 {
            Wait::Done => Ok(()),
            Wait::Writer(receiver) => receiver.await.map_err(|_| StorageError::Stopped)?,
            Wait::Future(durable) => durable.await,
        }
    }
}

/// Called for each entry once it is durable, in journal order, before the
/// appenders hear of it.
pub type OnCommit = Box<dyn Fn(&Entry) + Send + Sync>;

/// The ordered, durable log an in-process store writes every change to (the
/// embedded backend also indexes it, and reads those indexes at start).
#[async_trait::async_trait]
pub trait Journal: fmt::Debug + Send + Sync {
    /// Queues `entry`; await the ticket for durability. Cheap and
    /// non-blocking, so the store calls it under its locks, which is what
    /// keeps the journal in the store's order.
    fn append(&self, entry: Entry) -> Ticket;

    /// Sets what runs after each commit (once; later calls are ignored).
    /// A journal that is not durable never calls it: its entries are visible
    /// at once.
    fn on_commit(&self, hook: OnCommit);

    /// Whether entries survive a restart.
    fn is_durable(&self) -> bool;

    /// The backend's name, as health and the log report it.
    fn backend(&self) -> &'static str;

    /// Whether the backend can store work now (a networked one: connected).
    fn serving(&self) -> bool {
        true
    }

    /// Makes what is queued durable and releases the journal. Later appends
    /// fail with [`StorageError::Stopped`].
    async fn close(&self);
}
