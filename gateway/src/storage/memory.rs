//! The in-process backend: applications and queues in memory, writing every
//! change to a [`Journal`]. With [`NullJournal`] nothing survives a restart
//! ([`open`], for pure load tests); the embedded backend gives it a redb
//! journal and replays that at start.

use std::sync::Arc;

use super::journal::{Entry, Journal, OnCommit, Ticket};
use super::queue::{DeliveryQueues, Pending};
use super::{Storage, StorageError};

mod queues;
mod store;

pub use queues::{MemoryQueue, MemoryQueues};
pub use store::MemoryStore;
pub(crate) use store::changed_entry;

/// Storage that keeps nothing across a restart.
pub fn open() -> Storage {
    let journal: Arc<dyn Journal> = Arc::new(NullJournal);
    Storage::new(
        Arc::new(MemoryStore::new(journal.clone())),
        Arc::new(MemoryQueues::default()),
        journal,
    )
}

/// Storage that writes to `journal` and first restores what its `entries`
/// describe: applications, statuses, report keys, and the requests still to
/// deliver (or dead letters).
pub(crate) fn restored(
    journal: Arc<dyn Journal>,
    entries: Vec<Entry>,
) -> Result<Storage, StorageError> {
    let store = MemoryStore::new(journal.clone());
    let queues = MemoryQueues::default();
    let waiting = store.restore(entries)?;
    let restored = waiting.len();
    for undelivered in waiting {
        let pending = Pending {
            message_id: undelivered.message_id,
            service_id: undelivered.service_id,
            correlation_id: undelivered.correlation_id,
            envelope: undelivered.envelope,
            attempts: 0,
            // Sessions live in memory only; after a restart anyone may take it.
            session: None,
        };
        let queue = queues.memory_queue(&undelivered.provider_id);
        if undelivered.stopped {
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

/// A journal that keeps nothing: changes are visible at once and lost on
/// restart.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullJournal;

#[async_trait::async_trait]
impl Journal for NullJournal {
    fn append(&self, _entry: Entry) -> Ticket {
        Ticket::done()
    }

    fn on_commit(&self, _hook: OnCommit) {}

    fn backend(&self) -> &'static str {
        "memory"
    }

    fn is_durable(&self) -> bool {
        false
    }

    async fn close(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance::Backend;

    struct Memory;

    #[async_trait::async_trait]
    impl Backend for Memory {
        async fn open(&self) -> Storage {
            open()
        }
    }

    crate::storage_conformance_tests!(
        #[tokio::test(start_paused = true)]
        || Memory
    );

    #[tokio::test(start_paused = true)]
    async fn passes_the_whole_suite_in_one_run() {
        crate::storage::conformance::run_all(|| Memory).await;
    }
}
