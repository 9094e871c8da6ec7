//! The in-process backend: applications and queues in memory, writing every
//! change to a [`Journal`]. With [`NullJournal`] nothing survives a restart
//! ([`open`], for pure load tests). The JetStream backend keeps its replica
//! of the shared stream in this store and these queues (every application in
//! memory, on every node); the embedded backend keeps its applications in
//! redb and only its queues here.

use std::sync::Arc;

use super::Storage;
use super::journal::{Entry, Journal, OnCommit, Ticket};

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
