//! The storage seam: what must survive a restart and be shared between
//! gateway nodes, behind a few traits, and the backends behind them.
//!
//! - [`ApplicationStore`]: applications, their status events under one
//!   gateway-wide sequence (where `Watch` resumes), the live feed, and the
//!   idempotency keys: Submit's message ids (unique across senders) and
//!   provider reports' ids.
//! - [`DeliveryQueues`] and [`ProviderQueue`]: one queue per provider system,
//!   shared by its connections, with leases, acknowledgements, attempts and
//!   dead letters.
//! - [`Journal`]: the ordered, durable log an in-process store writes to.
//!
//! Backends: [`memory`] (nothing survives a restart; pure load tests),
//! [`embedded`] (a redb journal, fsync'd before every receipt, read through
//! on demand) and [`jetstream`] (a NATS JetStream stream shared by several gateway
//! nodes, each with a replica). All pass the same conformance suite (`storage::conformance`, built for tests and
//! with the `test-util` feature).
//!
//! What may do I/O is `async` and fails with a [`StorageError`]. What a
//! backend answers from local state is not: appending to the journal (it
//! hands back a [`Ticket`] to await), subscribing to the live feed, and a
//! queue's wake-up.

use std::fmt;
use std::sync::Arc;

mod application;
#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
pub mod embedded;
pub mod jetstream;
mod journal;
pub mod memory;
mod queue;

pub use application::{
    ApplicationRecord, ApplicationStore, Change, Inserted, Read, ReportKey, Update, WatchTarget,
    sender_key, timestamp,
};
pub use journal::{Accepted, Changed, Entry, Journal, OnCommit, Record, Ticket};
pub use queue::{
    DeliveryQueues, Filter, Leased, MAX_DEAD_LETTERS, Pending, ProviderQueue, Settled,
};

// Defined beside the gateway's error, which wraps it: the error module then
// needs nothing of storage's own types.
pub use crate::error::storage::{Corruption, Source, StorageError};

/// One backend's stores, as the engine holds them.
#[derive(Clone)]
pub struct Storage {
    /// Applications, status events and idempotency keys.
    pub store: Arc<dyn ApplicationStore>,
    /// The provider queues.
    pub delivery: Arc<dyn DeliveryQueues>,
    /// Speaks for the backend's durability and its shutdown.
    journal: Arc<dyn Journal>,
}

impl fmt::Debug for Storage {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Storage")
            .field("journal", &self.journal)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Bundles a backend's stores; `journal` answers for its durability and
    /// is closed with it.
    pub fn new(
        store: Arc<dyn ApplicationStore>,
        delivery: Arc<dyn DeliveryQueues>,
        journal: Arc<dyn Journal>,
    ) -> Self {
        Self {
            store,
            delivery,
            journal,
        }
    }

    /// Whether what was stored survives a restart.
    pub fn is_durable(&self) -> bool {
        self.journal.is_durable()
    }

    /// The backend's name: `memory`, `embedded` or `jetstream`.
    pub fn backend(&self) -> &'static str {
        self.journal.backend()
    }

    /// Whether the backend can store work now (JetStream: NATS reachable).
    pub fn serving(&self) -> bool {
        self.journal.serving()
    }

    /// Makes what is queued durable and releases the backend (its file, its
    /// connection). Later changes fail with [`StorageError::Stopped`].
    pub async fn close(&self) {
        self.journal.close().await;
    }
}
