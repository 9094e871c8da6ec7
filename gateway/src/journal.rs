//! The journal: every accepted application and every status change, appended
//! in order, hash-chained, and on disk before the caller answers.
//!
//! Appends are queued synchronously (so journal order is the order in which
//! the store applied the changes, under its locks) and made durable by one
//! writer thread that commits whatever has queued up in a single redb write
//! transaction: one fsync covers many concurrent submissions (group commit).
//! Callers wait on a [`Ticket`] for their entry to be durable.
//!
//! Each record carries the SHA-256 of the previous record, and its own hash
//! over that and its content, so an edited or removed entry breaks the chain
//! from there on (`shep journal verify`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread::JoinHandle;

use prost::Message;
use redb::{Database, Durability, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use ring::digest::{SHA256, digest};
use shep_proto::envelope::v1::{SignedEnvelope, Subject};
use shep_proto::gateway::v1::StatusEvent;
use tokio::sync::{mpsc, oneshot};

const RECORDS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("journal");
/// The most records one group commit takes.
const MAX_BATCH: usize = 4096;

/// Why the journal failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    #[error("journal storage: {0}")]
    Storage(String),
    #[error("the journal writer has stopped")]
    Stopped,
    #[error("record {sequence}: {problem}")]
    Corrupt { sequence: u64, problem: String },
}

fn storage(error: impl fmt::Display) -> JournalError {
    JournalError::Storage(error.to_string())
}

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
    /// SHA-256 of the record with an empty `hash` field.
    fn compute_hash(&self) -> Vec<u8> {
        let mut unhashed = self.clone();
        unhashed.hash.clear();
        digest(&SHA256, &unhashed.encode_to_vec()).as_ref().to_vec()
    }
}

/// Resolves when the entry is durable.
#[derive(Debug)]
pub struct Ticket(Option<oneshot::Receiver<Result<(), JournalError>>>);

impl Ticket {
    /// A ticket already done (the in-memory mode).
    pub fn done() -> Self {
        Self(None)
    }

    /// Waits until the entry is on disk.
    pub async fn durable(self) -> Result<(), JournalError> {
        match self.0 {
            None => Ok(()),
            Some(receiver) => receiver.await.map_err(|_| JournalError::Stopped)?,
        }
    }
}

struct Pending {
    entry: Entry,
    done: oneshot::Sender<Result<(), JournalError>>,
}

/// Called on the writer thread for each record once it is committed, in
/// journal order, before the appenders hear of it.
pub type OnCommit = Box<dyn Fn(&Entry) + Send + Sync>;

/// The journal: redb on disk, or nothing (in-memory mode for pure load tests).
pub struct Journal {
    on_commit: Arc<OnceLock<OnCommit>>,
    /// `None` in memory mode, and after `close`.
    queue: RwLock<Option<mpsc::UnboundedSender<Pending>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    path: Option<PathBuf>,
}

impl fmt::Debug for Journal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Journal")
            .field("path", &self.path)
            .finish()
    }
}

impl Journal {
    /// A journal that keeps nothing: state lives in memory only.
    pub fn memory() -> Self {
        Self {
            on_commit: Arc::new(OnceLock::new()),
            queue: RwLock::new(None),
            writer: Mutex::new(None),
            path: None,
        }
    }

    /// Opens (or creates) the journal at `path`, returning it and every
    /// record already there, in order, after checking the chain.
    pub fn open(path: &Path) -> Result<(Self, Vec<Entry>), JournalError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(storage)?;
        }
        let database = Database::create(path).map_err(storage)?;
        {
            // Make sure the table exists, so readers never miss it.
            let transaction = database.begin_write().map_err(storage)?;
            transaction.open_table(RECORDS).map_err(storage)?;
            transaction.commit().map_err(storage)?;
        }
        let records = read_records(&database)?;
        let last = verify_chain(&records)?;
        let entries = records
            .into_iter()
            .filter_map(|record| record.entry)
            .collect();
        let (queue, receiver) = mpsc::unbounded_channel();
        let on_commit = Arc::new(OnceLock::new());
        let committed = on_commit.clone();
        let writer = std::thread::Builder::new()
            .name("shep-journal".to_owned())
            .spawn(move || write_loop(database, receiver, last, &committed))
            .map_err(storage)?;
        Ok((
            Self {
                on_commit,
                queue: RwLock::new(Some(queue)),
                writer: Mutex::new(Some(writer)),
                path: Some(path.to_owned()),
            },
            entries,
        ))
    }

    /// Sets what runs after each commit (once; later calls are ignored).
    pub fn on_commit(&self, hook: OnCommit) {
        let _ = self.on_commit.set(hook);
    }

    /// Writes what is queued, stops the writer and releases the file.
    /// Later appends fail with `Stopped`.
    pub fn close(&self) {
        self.queue
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }

    /// Queues `entry`; await the ticket for durability. Cheap and
    /// non-blocking, so it may be called under the store's locks, which is
    /// what keeps the journal in the store's order.
    pub fn append(&self, entry: Entry) -> Ticket {
        let queue = self
            .queue
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(queue) = queue.as_ref() else {
            return if self.path.is_some() {
                let (done, receiver) = oneshot::channel();
                let _ = done.send(Err(JournalError::Stopped));
                Ticket(Some(receiver))
            } else {
                Ticket::done()
            };
        };
        let (done, receiver) = oneshot::channel();
        if queue.send(Pending { entry, done }).is_err() {
            let (done, receiver) = oneshot::channel();
            let _ = done.send(Err(JournalError::Stopped));
            return Ticket(Some(receiver));
        }
        Ticket(Some(receiver))
    }

    /// Whether entries survive a restart.
    pub fn is_durable(&self) -> bool {
        self.path.is_some()
    }
}

fn read_records(database: &Database) -> Result<Vec<Record>, JournalError> {
    let transaction = database.begin_read().map_err(storage)?;
    let table = transaction.open_table(RECORDS).map_err(storage)?;
    let mut records = Vec::new();
    for item in table.iter().map_err(storage)? {
        let (key, value) = item.map_err(storage)?;
        let record = Record::decode(value.value()).map_err(|error| JournalError::Corrupt {
            sequence: key.value(),
            problem: format!("does not decode: {error}"),
        })?;
        if record.sequence != key.value() {
            return Err(JournalError::Corrupt {
                sequence: key.value(),
                problem: format!("stored under {} but says {}", key.value(), record.sequence),
            });
        }
        records.push(record);
    }
    Ok(records)
}

/// Checks the chain; returns the last sequence and hash.
fn verify_chain(records: &[Record]) -> Result<(u64, Vec<u8>), JournalError> {
    let mut sequence = 0;
    let mut hash = Vec::new();
    for record in records {
        let broken = |problem: &str| JournalError::Corrupt {
            sequence: record.sequence,
            problem: problem.to_owned(),
        };
        if record.sequence != sequence + 1 {
            return Err(broken(&format!(
                "follows record {sequence}: a record is missing"
            )));
        }
        if record.prev_hash != hash {
            return Err(broken("does not link to the record before it"));
        }
        if record.compute_hash() != record.hash {
            return Err(broken("its content does not match its hash (edited)"));
        }
        sequence = record.sequence;
        hash = record.hash.clone();
    }
    Ok((sequence, hash))
}

/// Checks the journal at `path` (the gateway must not have it open); returns
/// the number of records.
pub fn verify_file(path: &Path) -> Result<u64, JournalError> {
    let database = Database::open(path).map_err(storage)?;
    let records = read_records(&database)?;
    verify_chain(&records).map(|(sequence, _)| sequence)
}

fn write_loop(
    database: Database,
    mut receiver: mpsc::UnboundedReceiver<Pending>,
    (mut sequence, mut hash): (u64, Vec<u8>),
    on_commit: &OnceLock<OnCommit>,
) {
    while let Some(first) = receiver.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let mut records = Vec::with_capacity(batch.len());
        let (mut next_sequence, mut next_hash) = (sequence, hash.clone());
        for pending in &batch {
            next_sequence += 1;
            let mut record = Record {
                sequence: next_sequence,
                prev_hash: next_hash.clone(),
                hash: Vec::new(),
                entry: Some(pending.entry.clone()),
            };
            record.hash = record.compute_hash();
            next_hash = record.hash.clone();
            records.push(record);
        }
        let outcome = commit(&database, &records);
        if outcome.is_ok() {
            (sequence, hash) = (next_sequence, next_hash);
            if let Some(hook) = on_commit.get() {
                for pending in &batch {
                    hook(&pending.entry);
                }
            }
        } else {
            tracing::error!(error = ?outcome, "journal commit failed");
        }
        for pending in batch {
            let _ = pending.done.send(outcome.clone());
        }
    }
}

fn commit(database: &Database, records: &[Record]) -> Result<(), JournalError> {
    let mut transaction = database.begin_write().map_err(storage)?;
    transaction
        .set_durability(Durability::Immediate)
        .map_err(storage)?;
    {
        let mut table = transaction.open_table(RECORDS).map_err(storage)?;
        for record in records {
            table
                .insert(record.sequence, record.encode_to_vec().as_slice())
                .map_err(storage)?;
        }
    }
    transaction.commit().map_err(storage)
}

/// Rewrites the content of record `sequence` without fixing the chain: what
/// an attacker editing the file would do. For tests of `verify`.
pub fn tamper(path: &Path, sequence: u64) -> Result<(), JournalError> {
    let database = Database::open(path).map_err(storage)?;
    let mut record = {
        let transaction = database.begin_read().map_err(storage)?;
        let table = transaction.open_table(RECORDS).map_err(storage)?;
        let value = table
            .get(sequence)
            .map_err(storage)?
            .ok_or_else(|| JournalError::Corrupt {
                sequence,
                problem: "no such record".to_owned(),
            })?;
        Record::decode(value.value()).map_err(storage)?
    };
    if let Some(Entry::Accepted(accepted)) = &mut record.entry {
        accepted.provider_id.push_str("-edited");
    } else if let Some(Entry::Changed(changed)) = &mut record.entry {
        changed.registration_number.push_str("-edited");
    }
    let transaction = database.begin_write().map_err(storage)?;
    {
        let mut table = transaction.open_table(RECORDS).map_err(storage)?;
        table
            .insert(sequence, record.encode_to_vec().as_slice())
            .map_err(storage)?;
    }
    transaction.commit().map_err(storage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(id: &str) -> Entry {
        Entry::Accepted(Accepted {
            message_id: id.to_owned(),
            ..Accepted::default()
        })
    }

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("shep-journal-{name}-{}.redb", std::process::id()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_survive_a_reopen_in_order() {
        let path = temp("reopen");
        let _ = std::fs::remove_file(&path);
        {
            let (journal, replayed) = Journal::open(&path).unwrap();
            assert!(replayed.is_empty());
            let tickets: Vec<Ticket> = (0..100)
                .map(|index| journal.append(accepted(&index.to_string())))
                .collect();
            for ticket in tickets {
                ticket.durable().await.unwrap();
            }
            journal.close();
        }
        let (journal, replayed) = Journal::open(&path).unwrap();
        let ids: Vec<String> = replayed
            .iter()
            .map(|entry| match entry {
                Entry::Accepted(accepted) => accepted.message_id.clone(),
                Entry::Changed(_) => String::new(),
            })
            .collect();
        let expected: Vec<String> = (0..100).map(|index: i32| index.to_string()).collect();
        assert_eq!(ids, expected);
        journal.close();
        assert!(matches!(
            journal.append(accepted("late")).durable().await,
            Err(JournalError::Stopped)
        ));
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_edited_record_breaks_the_chain() {
        let path = temp("tamper");
        let _ = std::fs::remove_file(&path);
        {
            let (journal, _) = Journal::open(&path).unwrap();
            for index in 0..5 {
                journal
                    .append(accepted(&index.to_string()))
                    .durable()
                    .await
                    .unwrap();
            }
            journal.close();
        }
        assert_eq!(verify_file(&path).unwrap(), 5);
        tamper(&path, 3).unwrap();
        let error = verify_file(&path).unwrap_err();
        assert!(
            matches!(error, JournalError::Corrupt { sequence: 3, .. }),
            "{error}"
        );
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn the_memory_journal_is_done_at_once() {
        let journal = Journal::memory();
        assert!(!journal.is_durable());
        journal.append(accepted("x")).durable().await.unwrap();
    }
}
