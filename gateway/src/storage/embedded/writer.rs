//! The journal's writer thread: group commits, and reopening the file after
//! a failed one.

use std::sync::Arc;
use std::time::Duration;

use ::redb::{Database, Durability};
use tokio::sync::mpsc;

use super::tables::Tables;
use super::{Pending, Shared, Write, cannot, tail};
use crate::storage::StorageError;
use crate::storage::journal::Record;

/// The most writes one group commit takes.
const MAX_BATCH: usize = 4096;
/// The longest pause between attempts to reopen a failing journal.
const MAX_REOPEN_PAUSE: Duration = Duration::from_secs(1);

/// Commits whatever has queued up, batch after batch, until the journal
/// closes; `chain` is the end of the log (sequence and hash).
pub(super) fn write_loop(
    shared: &Shared,
    mut receiver: mpsc::UnboundedReceiver<Pending>,
    mut chain: (u64, Vec<u8>),
) {
    while let Some(first) = receiver.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let outcome = match shared.database() {
            Some(database) => commit(&database, &batch, &chain),
            None => Err(StorageError::unavailable(
                "write the journal",
                "the journal is being reopened",
            )),
        };
        let failed = match outcome {
            Ok(next) => {
                chain = next;
                None
            }
            Err(error) => {
                tracing::error!(error = %crate::error::with_causes(&error), "journal commit failed");
                Some(error)
            }
        };
        for pending in batch {
            shared.settle(&pending.write, failed.is_none());
            let _ = pending.done.send(match &failed {
                None => Ok(()),
                Some(error) => Err(error.clone()),
            });
        }
        if failed.is_some() {
            match reopen(shared, &mut receiver) {
                Some(reopened) => chain = reopened,
                None => return,
            }
        }
    }
}

/// Writes `batch` after `chain` in one transaction, on disk when it returns;
/// returns the new end of the chain. A failure (a full or failing disk) is
/// `Unavailable`: nothing of the batch was stored.
fn commit(
    database: &Database,
    batch: &[Pending],
    chain: &(u64, Vec<u8>),
) -> Result<(u64, Vec<u8>), StorageError> {
    let mut transaction = database
        .begin_write()
        .map_err(cannot("begin a journal write"))?;
    transaction
        .set_durability(Durability::Immediate)
        .map_err(cannot("set the journal's durability"))?;
    let (mut sequence, mut hash) = chain.clone();
    {
        let mut tables = Tables::open(&transaction).map_err(cannot("open the journal tables"))?;
        for pending in batch {
            match &pending.write {
                Write::Entries(entries) => {
                    for entry in entries {
                        sequence += 1;
                        let record = Record::chained(sequence, hash, entry.clone());
                        tables
                            .append(&record)
                            .map_err(cannot("write a journal record"))?;
                        hash = record.hash;
                    }
                }
                Write::Report {
                    sender,
                    message_id,
                    report,
                } => tables
                    .remember(sender, message_id, report)
                    .map_err(cannot("write a report key"))?,
            }
        }
        tables
            .finish()
            .map_err(cannot("write the journal's indexes"))?;
    }
    transaction
        .commit()
        .map_err(cannot("commit to the journal"))?;
    Ok((sequence, hash))
}

/// Reopens the journal after a failed commit (redb refuses a file after an
/// I/O error until it is opened again), refusing what is appended meanwhile;
/// returns the end of the chain as the file has it, or `None` when the
/// journal was closed.
fn reopen(
    shared: &Shared,
    receiver: &mut mpsc::UnboundedReceiver<Pending>,
) -> Option<(u64, Vec<u8>)> {
    let taken = shared
        .database
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    if let Some(mut database) = taken {
        // Readers hold it only for one read; the file lock goes with it.
        loop {
            match Arc::try_unwrap(database) {
                Ok(database) => {
                    drop(database);
                    break;
                }
                Err(shared) => {
                    database = shared;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    let mut pause = Duration::from_millis(10);
    loop {
        loop {
            match receiver.try_recv() {
                Ok(pending) => {
                    shared.settle(&pending.write, false);
                    let _ = pending.done.send(Err(StorageError::unavailable(
                        "write the journal",
                        "the journal is being reopened after a failed write",
                    )));
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
            }
        }
        // The file decides where the chain ends: a commit reported failed
        // may have reached it.
        match (shared.opener)().and_then(|database| Ok((tail(&database)?, database))) {
            Ok((chain, database)) => {
                *shared
                    .database
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(database));
                tracing::info!(records = chain.0, "journal reopened; storing again");
                return Some(chain);
            }
            Err(error) => {
                tracing::warn!(error = %crate::error::with_causes(&error), "reopening the journal failed");
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(MAX_REOPEN_PAUSE);
    }
}
