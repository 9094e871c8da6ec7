//! The embedded backend: applications, status events and idempotency keys in
//! a redb file, read through on demand; only what is in flight (and redb's
//! bounded page cache) is in memory, and a start reads only what is still to
//! deliver.
//!
//! Every change is a record of the hash-chained log ([`tables::JOURNAL`],
//! the audit log `shep journal verify` checks) and, in the same write
//! transaction, an update of the index tables the store reads
//! ([`tables`]). Appends are queued synchronously (so the log's order is
//! the order in which the store applied the changes, under its locks) and
//! made durable by one writer thread that commits whatever has queued up in
//! a single transaction: one fsync covers many concurrent submissions (group
//! commit). Callers wait on a [`Ticket`].
//!
//! A failed commit (a full or failing disk) fails its batch with
//! `Unavailable`, nothing of it stored; redb then refuses the file until it
//! is opened again, so the writer reopens it, refusing what arrives meanwhile,
//! and carries on once the disk takes writes again.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread::JoinHandle;

use ::redb::{Database, ReadTransaction, ReadableDatabase as _, ReadableTable as _};
use prost::Message;
use tokio::sync::{mpsc, oneshot};

use super::journal::{ChainCheck, Entry, Journal, OnCommit, Record, Ticket};
use super::memory::MemoryQueues;
use super::queue::{DeliveryQueues, Pending as Queued};
use super::{Corruption, Storage, StorageError};

#[cfg(any(test, feature = "test-util"))]
mod faulty;
mod store;
mod tables;
mod writer;

pub use store::RedbStore;
use tables::{JOURNAL, StoredReport, Tables};

/// Log records indexed per transaction when indexing an older log.
const INDEX_CHUNK: u64 = 2048;
/// How many of the log's last records a start checks.
const TAIL_CHECK: u64 = 1024;

fn failed<E>(operation: &'static str) -> impl FnOnce(E) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |error| StorageError::backend(operation, error)
}

fn cannot<E>(operation: &'static str) -> impl FnOnce(E) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |error| StorageError::unavailable(operation, error)
}

/// How to open the journal.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bytes of redb's page cache (what the journal may hold in memory
    /// beyond the work in flight).
    pub cache_bytes: usize,
    /// While set, the file refuses writes with ENOSPC: a full disk, for tests.
    #[cfg(any(test, feature = "test-util"))]
    pub disk_full: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            cache_bytes: 64 << 20,
            #[cfg(any(test, feature = "test-util"))]
            disk_full: None,
        }
    }
}

/// Opens (or creates) the journal at `path` with the default options.
pub fn open(path: &Path) -> Result<Storage, StorageError> {
    open_with(path, &Options::default())
}

/// Opens (or creates) the journal at `path`: checks the log's last
/// [`TAIL_CHECK`] records,
/// indexes what an older gateway logged without indexes, and queues again
/// the requests still on delivery (and the dead letters). Fails on a broken
/// chain there, naming the record (`verify_file` checks the whole chain).
pub fn open_with(path: &Path, options: &Options) -> Result<Storage, StorageError> {
    let journal = Arc::new(RedbJournal::open(path, options)?);
    let store = RedbStore::open(journal.clone())?;
    let queues = MemoryQueues::default();
    let waiting = journal.read(undelivered)?;
    let restored = waiting.len();
    for (provider, pending, stopped) in waiting {
        let queue = queues.memory_queue(&provider);
        if stopped {
            queue.push_dead(pending);
        } else {
            queue.push_ready(pending);
        }
    }
    if restored > 0 {
        tracing::info!(restored, "requests to deliver restored from the journal");
    }
    let delivery: Arc<dyn DeliveryQueues> = Arc::new(queues);
    Ok(Storage::new(Arc::new(store), delivery, journal))
}

/// The requests on delivery or stopped, in the order accepted, with their
/// provider and envelope.
fn undelivered(transaction: &ReadTransaction) -> Result<Vec<(String, Queued, bool)>, StorageError> {
    Ok(tables::outstanding(transaction)?
        .into_iter()
        .map(|(record, stopped)| {
            let pending = Queued {
                message_id: record.message_id,
                service_id: record.service_id,
                correlation_id: record.correlation_id,
                envelope: record.envelope,
                attempts: 0,
                // Sessions live in memory only; after a restart anyone may take it.
                session: None,
            };
            (record.provider_id, pending, stopped)
        })
        .collect())
}

/// What the writer commits.
enum Write {
    /// Log records, in order, in one transaction.
    Entries(Vec<Entry>),
    /// A provider report's key, outside the log.
    Report {
        sender: String,
        message_id: String,
        report: StoredReport,
    },
}

struct Pending {
    write: Write,
    done: oneshot::Sender<Result<(), StorageError>>,
}

/// Called with each logged entry once its commit succeeded (`true`) or
/// failed, in log order, before the appenders hear of it.
type Settle = Box<dyn Fn(&Entry, bool) + Send + Sync>;

type Opener = Box<dyn Fn() -> Result<Database, StorageError> + Send + Sync>;

/// What the writer thread and the readers share.
struct Shared {
    /// `None` while the writer reopens a failing file.
    database: RwLock<Option<Arc<Database>>>,
    settle: OnceLock<Settle>,
    opener: Opener,
}

impl Shared {
    fn database(&self) -> Option<Arc<Database>> {
        self.database
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn settle(&self, write: &Write, committed: bool) {
        if let (Write::Entries(entries), Some(settle)) = (write, self.settle.get()) {
            for entry in entries {
                settle(entry, committed);
            }
        }
    }
}

/// The journal in a redb file.
pub struct RedbJournal {
    shared: Arc<Shared>,
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

fn opener(path: &Path, options: &Options) -> Opener {
    let path = path.to_owned();
    let cache_bytes = options.cache_bytes;
    #[cfg(any(test, feature = "test-util"))]
    let disk_full = options.disk_full.clone();
    Box::new(move || {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(cannot("open the journal"))?;
        let backend =
            ::redb::backends::FileBackend::new(file).map_err(cannot("open the journal"))?;
        let mut builder = Database::builder();
        builder.set_cache_size(cache_bytes);
        #[cfg(any(test, feature = "test-util"))]
        if let Some(full) = &disk_full {
            return builder
                .create_with_backend(faulty::FaultyBackend::new(backend, full.clone()))
                .map_err(cannot("open the journal"));
        }
        builder
            .create_with_backend(backend)
            .map_err(cannot("open the journal"))
    })
}

impl RedbJournal {
    /// Opens (or creates) the journal at `path`, checks the end of its chain
    /// and brings the indexes up to the log.
    pub fn open(path: &Path, options: &Options) -> Result<Self, StorageError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed("create the journal's directory"))?;
        }
        let opener = opener(path, options);
        let database = opener()?;
        {
            // Create the tables, so readers never miss one.
            let transaction = database
                .begin_write()
                .map_err(failed("begin a journal write"))?;
            Tables::open(&transaction).map_err(failed("create the journal tables"))?;
            transaction
                .commit()
                .map_err(failed("create the journal tables"))?;
        }
        let last = tail(&database)?;
        index_backlog(&database, last.0)?;
        let shared = Arc::new(Shared {
            database: RwLock::new(Some(Arc::new(database))),
            settle: OnceLock::new(),
            opener,
        });
        let (queue, receiver) = mpsc::unbounded_channel();
        let writing = shared.clone();
        let writer = std::thread::Builder::new()
            .name("shep-journal".to_owned())
            .spawn(move || writer::write_loop(&writing, receiver, last))
            .map_err(failed("start the journal writer"))?;
        Ok(Self {
            shared,
            queue: RwLock::new(Some(queue)),
            writer: Mutex::new(Some(writer)),
            path: path.to_owned(),
        })
    }

    /// Sets what runs after each commit, or failed commit (once).
    fn on_settle(&self, settle: Settle) {
        let _ = self.shared.settle.set(settle);
    }

    /// Queues a write; await the ticket for durability.
    fn write(&self, write: Write) -> Ticket {
        let queue = self
            .queue
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(queue) = queue.as_ref() else {
            return Ticket::failed(StorageError::Stopped);
        };
        let (done, receiver) = oneshot::channel();
        if queue.send(Pending { write, done }).is_err() {
            return Ticket::failed(StorageError::Stopped);
        }
        Ticket::from_writer(receiver)
    }

    /// Runs `read` in a read transaction of what is committed.
    fn read<T>(
        &self,
        read: impl FnOnce(&ReadTransaction) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let Some(database) = self.shared.database() else {
            let closed = self
                .queue
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .is_none();
            return Err(if closed {
                StorageError::Stopped
            } else {
                StorageError::unavailable("read the journal", "the journal is being reopened")
            });
        };
        let transaction = database
            .begin_read()
            .map_err(cannot("begin a journal read"))?;
        read(&transaction)
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
        self.shared
            .database
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
    }
}

#[async_trait::async_trait]
impl Journal for RedbJournal {
    fn append(&self, entry: Entry) -> Ticket {
        self.write(Write::Entries(vec![entry]))
    }

    fn on_commit(&self, hook: OnCommit) {
        self.on_settle(Box::new(move |entry, committed| {
            if committed {
                hook(entry);
            }
        }));
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn is_durable(&self) -> bool {
        true
    }

    /// Not while the writer reopens the file after a failed write (health
    /// reports the storage down; the gateway says so in its log).
    fn serving(&self) -> bool {
        self.shared.database().is_some()
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

fn decode_record(key: u64, value: &[u8]) -> Result<Record, StorageError> {
    let corrupt = |problem| StorageError::Corrupt {
        sequence: key,
        problem,
    };
    let record = Record::decode(value).map_err(|error| corrupt(Corruption::Undecodable(error)))?;
    if record.sequence != key {
        return Err(corrupt(Corruption::Misplaced {
            stored_under: key,
            says: record.sequence,
        }));
    }
    Ok(record)
}

/// The last record's sequence and hash, after checking the chain's last
/// [`TAIL_CHECK`] records: what a start checks, in time bounded whatever the
/// journal's length (`verify_file` checks the whole chain).
fn tail(database: &Database) -> Result<(u64, Vec<u8>), StorageError> {
    let transaction = database
        .begin_read()
        .map_err(failed("begin a journal read"))?;
    let journal = transaction
        .open_table(JOURNAL)
        .map_err(failed("open the journal table"))?;
    let Some((last, _)) = journal.last().map_err(failed("read the journal"))? else {
        return Ok((0, Vec::new()));
    };
    let last = last.value();
    let first = last.saturating_sub(TAIL_CHECK - 1).max(1);
    let mut check: Option<ChainCheck> = None;
    for item in journal
        .range(first..=last)
        .map_err(failed("read the journal"))?
    {
        let (key, value) = item.map_err(failed("read a journal record"))?;
        let record = decode_record(key.value(), value.value())?;
        match &mut check {
            Some(check) => check.next(&record)?,
            None if record.sequence == 1 => {
                let mut from_start = ChainCheck::default();
                from_start.next(&record)?;
                check = Some(from_start);
            }
            None => check = Some(ChainCheck::starting_at(&record)?),
        }
    }
    let check = check.ok_or(StorageError::Corrupt {
        sequence: first,
        problem: Corruption::Absent,
    })?;
    let (sequence, hash) = check.last();
    if sequence != last {
        return Err(StorageError::Corrupt {
            sequence: last,
            problem: Corruption::Gap { previous: sequence },
        });
    }
    Ok((sequence, hash))
}

/// Indexes the log records after the last one indexed, up to `last`: a log
/// written by a gateway without index tables, once. Checks the chain as it
/// goes when it starts from the first record.
fn index_backlog(database: &Database, last: u64) -> Result<(), StorageError> {
    let mut indexed = tables::indexed(
        &database
            .begin_read()
            .map_err(failed("begin a journal read"))?,
    )?;
    if indexed >= last {
        return Ok(());
    }
    tracing::info!(from = indexed + 1, to = last, "indexing the journal");
    let mut check = (indexed == 0).then(ChainCheck::default);
    while indexed < last {
        let upto = last.min(indexed + INDEX_CHUNK);
        let mut records = Vec::new();
        {
            let transaction = database
                .begin_read()
                .map_err(failed("begin a journal read"))?;
            let journal = transaction
                .open_table(JOURNAL)
                .map_err(failed("open the journal table"))?;
            for item in journal
                .range(indexed + 1..=upto)
                .map_err(failed("read the journal"))?
            {
                let (key, value) = item.map_err(failed("read a journal record"))?;
                let record = decode_record(key.value(), value.value())?;
                if let Some(check) = &mut check {
                    check.next(&record)?;
                }
                records.push(record);
            }
        }
        let transaction = database
            .begin_write()
            .map_err(failed("begin a journal write"))?;
        {
            let mut tables =
                Tables::open(&transaction).map_err(failed("open the journal tables"))?;
            for record in &records {
                tables.apply(record).map_err(failed("index the journal"))?;
            }
            tables.finish().map_err(failed("index the journal"))?;
        }
        transaction.commit().map_err(failed("index the journal"))?;
        indexed = upto;
    }
    Ok(())
}

/// Checks the whole chain of the journal at `path` (the gateway must not
/// have it open), one record at a time; returns the number of records.
pub fn verify_file(path: &Path) -> Result<u64, StorageError> {
    // A journal is read once, front to back: a cache would only grow.
    let database = Database::builder()
        .set_cache_size(Options::default().cache_bytes)
        .open(path)
        .map_err(failed("open the journal"))?;
    let transaction = database
        .begin_read()
        .map_err(failed("begin a journal read"))?;
    let journal = transaction
        .open_table(JOURNAL)
        .map_err(failed("open the journal table"))?;
    let mut check = ChainCheck::default();
    for item in journal.iter().map_err(failed("read the journal"))? {
        let (key, value) = item.map_err(failed("read a journal record"))?;
        check.next(&decode_record(key.value(), value.value())?)?;
    }
    Ok(check.last().0)
}

/// Rewrites the content of record `sequence` without fixing the chain: what
/// an attacker editing the file would do. For tests of `verify`.
pub fn tamper(path: &Path, sequence: u64) -> Result<(), StorageError> {
    let database = Database::open(path).map_err(failed("open the journal"))?;
    let mut record = {
        let transaction = database
            .begin_read()
            .map_err(failed("begin a journal read"))?;
        tables::record(&transaction, sequence)?
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
            .open_table(JOURNAL)
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
