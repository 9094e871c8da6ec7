//! `shep journal verify --nats`: the JetStream counterpart of the embedded
//! journal's chain check. JetStream keeps the order and the integrity of
//! the stream; what can still go wrong is a message a replica cannot apply
//! (a change of an application never accepted, an undecodable command).
//! Replaying the whole stream into a fresh replica, as a starting node
//! does, finds it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{JetStreamOptions, JetStreamQueues, JetStreamStore, Log};
use crate::storage::{DeliveryQueues as _, StorageError};

/// What a replay of the stream found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// The stream's last sequence: every message up to it applied.
    pub last_sequence: u64,
    /// Applications, and their status events.
    pub applications: usize,
    pub events: usize,
    /// Across every provider's queue: queued, leased and dead-lettered.
    pub queued: usize,
    pub leased: usize,
    pub dead: usize,
}

/// Replays the stream named by `options` into a fresh replica and says
/// what it holds, or which message could not be applied.
pub async fn verify(options: &JetStreamOptions) -> Result<Verified, StorageError> {
    let log = Log::connect(options).await?;
    let store = Arc::new(JetStreamStore::new(log.clone()));
    let queues = Arc::new(JetStreamQueues::new(log.clone()));
    let followed = log.follow(store.clone(), queues.clone()).await;
    log.stop();
    if log.broken.load(Ordering::Acquire) {
        let failure = log
            .failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .unwrap_or_default();
        return Err(StorageError::backend("replay the stream", failure));
    }
    followed?;
    let mut verified = Verified {
        last_sequence: *log.applied.borrow(),
        ..Verified::default()
    };
    store.replica().for_each(|record| {
        verified.applications += 1;
        verified.events += record.events.len();
    });
    for (_, queue) in queues.queues().await? {
        let (queued, leased, dead) = queue.depth().await?;
        verified.queued += queued;
        verified.leased += leased;
        verified.dead += dead;
    }
    Ok(verified)
}
