//! The embedded backend: the in-memory store and queues over a redb journal,
//! on disk before every receipt, replayed at start.
//!
//! Appends are queued synchronously (so journal order is the order in which
//! the store applied the changes, under its locks) and made durable by one
//! writer thread that commits whatever has queued up in a single redb write
//! transaction: one fsync covers many concurrent submissions (group commit).
//! Callers wait on a [`Ticket`] for their entry to be durable.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread::JoinHandle;

use ::redb::{Database, Durability, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use prost::Message;
use tokio::sync::{mpsc, oneshot};

use super::journal::{Entry, Journal, OnCommit, Record, Ticket, verify_chain};
use super::{Corruption, Storage, StorageError, memory};

const RECORDS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("journal");
/// The most records one group commit takes.
const MAX_BATCH: usize = 4096;

fn failed<E>(operation: &'static str) -> impl FnOnce(E) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |error| StorageError::backend(operation, error)
}

/// Opens (or creates) the journal at `path` and restores what it holds:
/// applications, statuses, report keys, the requests still to deliver and
/// the dead letters. Fails on a broken chain, naming the record.
pub fn open(path: &Path) -> Result<Storage, StorageError> {
    let (journal, entries) = RedbJournal::open(path)?;
    memory::restored(Arc::new(journal), entries)
}

struct Pending {
    entry: Entry,
    done: oneshot::Sender<Result<(), StorageError>>,
}

/// The journal in a redb file.
pub struct RedbJournal {
    on_commit: Arc<OnceLock<OnCommit>>,
    /// `None` after `close`.
    queue: RwLock<Option<mpsc::UnboundedSender<Pending>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
}

impl fmt::Debug for RedbJournal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RedbJournal")
            .field("path", &self.path)
            .finish()
    }
}

impl RedbJournal {
    /// Opens (or creates) the journal at `path`, returning it and every
    /// record already there, in order, after checking the chain.
    pub fn open(path: &Path) -> Result<(Self, Vec<Entry>), StorageError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed("create the journal's directory"))?;
        }
        let database = Database::create(path).map_err(failed("open the journal"))?;
        {
            // Make sure the table exists, so readers never miss it.
            let transaction = database
                .begin_write()
                .map_err(failed("begin a journal write"))?;
            transaction
                .open_table(RECORDS)
                .map_err(failed("open the journal table"))?;
            transaction
                .commit()
                .map_err(failed("create the journal table"))?;
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
            .map_err(failed("start the journal writer"))?;
        Ok((
            Self {
                on_commit,
                queue: RwLock::new(Some(queue)),
                writer: Mutex::new(Some(writer)),
                path: path.to_owned(),
            },
            entries,
        ))
    }

    /// Writes what is queued, stops the writer and releases the file.
    fn close_now(&self) {
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
}

#[async_trait::async_trait]
impl Journal for RedbJournal {
    fn append(&self, entry: Entry) -> Ticket {
        let queue = self
            .queue
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(queue) = queue.as_ref() else {
            return Ticket::failed(StorageError::Stopped);
        };
        let (done, receiver) = oneshot::channel();
        if queue.send(Pending { entry, done }).is_err() {
            return Ticket::failed(StorageError::Stopped);
        }
        Ticket::from_writer(receiver)
    }

    fn on_commit(&self, hook: OnCommit) {
        let _ = self.on_commit.set(hook);
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn is_durable(&self) -> bool {
        true
    }

    async fn close(&self) {
        self.close_now();
    }
}

impl Drop for RedbJournal {
    fn drop(&mut self) {
        // Release the file even when nobody closed the journal.
        self.close_now();
    }
}

fn read_records(database: &Database) -> Result<Vec<Record>, StorageError> {
    let transaction = database
        .begin_read()
        .map_err(failed("begin a journal read"))?;
    let table = transaction
        .open_table(RECORDS)
        .map_err(failed("open the journal table"))?;
    let mut records = Vec::new();
    for item in table.iter().map_err(failed("read the journal"))? {
        let (key, value) = item.map_err(failed("read a journal record"))?;
        let corrupt = |problem| StorageError::Corrupt {
            sequence: key.value(),
            problem,
        };
        let record = Record::decode(value.value())
            .map_err(|error| corrupt(Corruption::Undecodable(error)))?;
        if record.sequence != key.value() {
            return Err(corrupt(Corruption::Misplaced {
                stored_under: key.value(),
                says: record.sequence,
            }));
        }
        records.push(record);
    }
    Ok(records)
}

/// Checks the journal at `path` (the gateway must not have it open); returns
/// the number of records.
pub fn verify_file(path: &Path) -> Result<u64, StorageError> {
    let database = Database::open(path).map_err(failed("open the journal"))?;
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
            let record = Record::chained(next_sequence, next_hash, pending.entry.clone());
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

/// Writes `records` in one transaction, on disk when it returns. A failure
/// (a full or failing disk) is `Unavailable`: nothing of the batch was
/// stored, and the caller may send again once space returns.
fn commit(database: &Database, records: &[Record]) -> Result<(), StorageError> {
    fn cannot<E>(operation: &'static str) -> impl FnOnce(E) -> StorageError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        move |error| StorageError::unavailable(operation, error)
    }
    let mut transaction = database
        .begin_write()
        .map_err(cannot("begin a journal write"))?;
    transaction
        .set_durability(Durability::Immediate)
        .map_err(cannot("set the journal's durability"))?;
    {
        let mut table = transaction
            .open_table(RECORDS)
            .map_err(cannot("open the journal table"))?;
        for record in records {
            table
                .insert(record.sequence, record.encode_to_vec().as_slice())
                .map_err(cannot("write a journal record"))?;
        }
    }
    transaction
        .commit()
        .map_err(cannot("commit to the journal"))
}

/// Rewrites the content of record `sequence` without fixing the chain: what
/// an attacker editing the file would do. For tests of `verify`.
pub fn tamper(path: &Path, sequence: u64) -> Result<(), StorageError> {
    let database = Database::open(path).map_err(failed("open the journal"))?;
    let mut record = {
        let transaction = database
            .begin_read()
            .map_err(failed("begin a journal read"))?;
        let table = transaction
            .open_table(RECORDS)
            .map_err(failed("open the journal table"))?;
        let value = table
            .get(sequence)
            .map_err(failed("read a journal record"))?
            .ok_or(StorageError::Corrupt {
                sequence,
                problem: Corruption::Absent,
            })?;
        Record::decode(value.value()).map_err(|error| StorageError::Corrupt {
            sequence,
            problem: Corruption::Undecodable(error),
        })?
    };
    if let Some(Entry::Accepted(accepted)) = &mut record.entry {
        accepted.provider_id.push_str("-edited");
    } else if let Some(Entry::Changed(changed)) = &mut record.entry {
        changed.registration_number.push_str("-edited");
    }
    let transaction = database
        .begin_write()
        .map_err(failed("begin a journal write"))?;
    {
        let mut table = transaction
            .open_table(RECORDS)
            .map_err(failed("open the journal table"))?;
        table
            .insert(sequence, record.encode_to_vec().as_slice())
            .map_err(failed("write a journal record"))?;
    }
    transaction
        .commit()
        .map_err(failed("commit to the journal"))
}

#[cfg(test)]
mod tests;
