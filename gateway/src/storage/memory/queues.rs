//! Provider queues in memory, every backend's (the queue holds what waits
//! for delivery, bounded by `delivery.max_queue_depth` at Submit and
//! [`MAX_DEAD_LETTERS`] for what stopped). After a restart the embedded
//! backend refills them from its table of outstanding requests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio::time::Instant;

use crate::storage::StorageError;
use crate::storage::queue::{
    DeliveryQueues, Filter, Leased, MAX_DEAD_LETTERS, Pending, ProviderQueue, Settled,
};

#[derive(Debug)]
struct Lease {
    pending: Pending,
    /// The holding connection; `None` for a pull.
    connection: Option<u64>,
    until: Instant,
}

#[derive(Debug, Default)]
struct QueueState {
    ready: VecDeque<Pending>,
    leased: HashMap<String, Lease>,
    in_flight: HashMap<u64, usize>,
    dead: VecDeque<Pending>,
}

impl QueueState {
    fn release_credit(&mut self, connection: Option<u64>) {
        if let Some(id) = connection
            && let Some(count) = self.in_flight.get_mut(&id)
        {
            *count = count.saturating_sub(1);
        }
    }

    /// Adds a dead letter; past [`MAX_DEAD_LETTERS`] the oldest leaves the
    /// list (its application stays NOT_DELIVERED; only its requeue is lost).
    fn bury(&mut self, pending: Pending) {
        self.dead.push_back(pending);
        if self.dead.len() > MAX_DEAD_LETTERS
            && let Some(oldest) = self.dead.pop_front()
        {
            tracing::warn!(message_id = %oldest.message_id, limit = MAX_DEAD_LETTERS, "dead letters full: the oldest leaves the list");
        }
    }

    fn retry_or_stop(&mut self, pending: Pending, max_attempts: u32) -> Settled {
        if pending.attempts >= max_attempts {
            let attempts = pending.attempts;
            self.bury(pending);
            Settled::Stopped { attempts }
        } else {
            // To the front: it was next before it was leased.
            self.ready.push_front(pending);
            Settled::Requeued
        }
    }
}

/// One provider's queue, in memory.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    state: Mutex<QueueState>,
    changed: Notify,
}

impl MemoryQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends a request.
    pub fn push_ready(&self, pending: Pending) {
        self.lock().ready.push_back(pending);
        self.changed.notify_waiters();
    }

    /// Puts a request straight into the dead letters (restored after a restart).
    pub fn push_dead(&self, pending: Pending) {
        self.lock().bury(pending);
    }

    /// Leases the next matching request until `until` (see
    /// [`ProviderQueue::take`]).
    pub(crate) fn take_until(
        &self,
        connection: Option<u64>,
        max_in_flight: usize,
        filter: &Filter,
        until: Instant,
    ) -> Option<Leased> {
        let mut state = self.lock();
        if let Some(id) = connection
            && state.in_flight.get(&id).copied().unwrap_or(0) >= max_in_flight
        {
            return None;
        }
        let index = state
            .ready
            .iter()
            .position(|pending| filter.accepts(pending))?;
        let mut pending = state.ready.remove(index)?;
        pending.attempts += 1;
        if let Some(id) = connection {
            *state.in_flight.entry(id).or_default() += 1;
        }
        state.leased.insert(
            pending.message_id.clone(),
            Lease {
                pending: pending.clone(),
                connection,
                until,
            },
        );
        Some(Leased { pending, until })
    }

    /// Whether `take_until` would lease something to `connection` now.
    pub(crate) fn could_take(
        &self,
        connection: Option<u64>,
        max_in_flight: usize,
        filter: &Filter,
    ) -> bool {
        let state = self.lock();
        connection.is_none_or(|id| state.in_flight.get(&id).copied().unwrap_or(0) < max_in_flight)
            && state.ready.iter().any(|pending| filter.accepts(pending))
    }

    /// Whether a lease has run out by `now`.
    pub(crate) fn has_expired(&self, now: Instant) -> bool {
        self.lock().leased.values().any(|lease| lease.until <= now)
    }

    /// Whether `message_id` is queued or leased (an acknowledgement would
    /// settle it).
    pub(crate) fn holds(&self, message_id: &str) -> bool {
        let state = self.lock();
        state.leased.contains_key(message_id)
            || state
                .ready
                .iter()
                .any(|pending| pending.message_id == message_id)
    }

    /// Whether `message_id` is a dead letter.
    pub(crate) fn is_dead(&self, message_id: &str) -> bool {
        self.lock()
            .dead
            .iter()
            .any(|pending| pending.message_id == message_id)
    }

    pub(crate) fn acknowledge_now(
        &self,
        message_id: &str,
        accepted: bool,
        resend: bool,
        max_attempts: u32,
    ) -> Option<Settled> {
        let mut state = self.lock();
        let pending = match state.leased.remove(message_id) {
            Some(lease) => {
                state.release_credit(lease.connection);
                lease.pending
            }
            // A late acknowledgement after the lease expired: honour it rather
            // than deliver the same request twice.
            None => {
                let index = state
                    .ready
                    .iter()
                    .position(|pending| pending.message_id == message_id)?;
                state.ready.remove(index)?
            }
        };
        let settled = if accepted {
            Settled::Delivered
        } else if resend {
            state.retry_or_stop(pending, max_attempts)
        } else {
            Settled::NotDelivered
        };
        drop(state);
        self.changed.notify_waiters();
        Some(settled)
    }

    pub(crate) fn release_connection_now(
        &self,
        connection: u64,
        max_attempts: u32,
    ) -> Vec<(String, Settled)> {
        let mut state = self.lock();
        let ids: Vec<String> = state
            .leased
            .iter()
            .filter(|(_, lease)| lease.connection == Some(connection))
            .map(|(id, _)| id.clone())
            .collect();
        let mut outcomes = Vec::new();
        for id in ids {
            if let Some(lease) = state.leased.remove(&id) {
                let settled = state.retry_or_stop(lease.pending, max_attempts);
                outcomes.push((id, settled));
            }
        }
        state.in_flight.remove(&connection);
        drop(state);
        self.changed.notify_waiters();
        outcomes
    }

    pub(crate) fn expire_now(&self, now: Instant, max_attempts: u32) -> Vec<(String, Settled)> {
        let mut state = self.lock();
        let expired: Vec<String> = state
            .leased
            .iter()
            .filter(|(_, lease)| lease.until <= now)
            .map(|(id, _)| id.clone())
            .collect();
        let mut outcomes = Vec::new();
        for id in expired {
            if let Some(lease) = state.leased.remove(&id) {
                state.release_credit(lease.connection);
                let settled = state.retry_or_stop(lease.pending, max_attempts);
                outcomes.push((id, settled));
            }
        }
        drop(state);
        if !outcomes.is_empty() {
            self.changed.notify_waiters();
        }
        outcomes
    }

    pub(crate) fn requeue_now(&self, message_id: &str) -> bool {
        let mut state = self.lock();
        let Some(index) = state
            .dead
            .iter()
            .position(|pending| pending.message_id == message_id)
        else {
            return false;
        };
        let Some(mut pending) = state.dead.remove(index) else {
            return false;
        };
        pending.attempts = 0;
        state.ready.push_front(pending);
        drop(state);
        self.changed.notify_waiters();
        true
    }
}

#[async_trait::async_trait]
impl ProviderQueue for MemoryQueue {
    fn changed(&self) -> Notified<'_> {
        self.changed.notified()
    }

    async fn push(&self, pending: Pending) -> Result<(), StorageError> {
        self.push_ready(pending);
        Ok(())
    }

    async fn take(
        &self,
        connection: Option<u64>,
        max_in_flight: usize,
        filter: &Filter,
        lease: Duration,
    ) -> Result<Option<Leased>, StorageError> {
        Ok(self.take_until(connection, max_in_flight, filter, Instant::now() + lease))
    }

    async fn acknowledge(
        &self,
        message_id: &str,
        accepted: bool,
        resend: bool,
        max_attempts: u32,
    ) -> Result<Option<Settled>, StorageError> {
        Ok(self.acknowledge_now(message_id, accepted, resend, max_attempts))
    }

    async fn release_connection(
        &self,
        connection: u64,
        max_attempts: u32,
    ) -> Result<Vec<(String, Settled)>, StorageError> {
        Ok(self.release_connection_now(connection, max_attempts))
    }

    async fn expire(
        &self,
        now: Instant,
        max_attempts: u32,
    ) -> Result<Vec<(String, Settled)>, StorageError> {
        Ok(self.expire_now(now, max_attempts))
    }

    async fn dead_letters(&self) -> Result<Vec<Pending>, StorageError> {
        Ok(self.lock().dead.iter().cloned().collect())
    }

    async fn requeue(&self, message_id: &str) -> Result<bool, StorageError> {
        Ok(self.requeue_now(message_id))
    }

    async fn depth(&self) -> Result<(usize, usize, usize), StorageError> {
        let state = self.lock();
        Ok((state.ready.len(), state.leased.len(), state.dead.len()))
    }
}

/// Every provider's queue, in memory.
#[derive(Debug, Default)]
pub struct MemoryQueues {
    queues: DashMap<String, Arc<MemoryQueue>>,
}

impl MemoryQueues {
    /// The queue of `provider`, created on first use.
    pub fn memory_queue(&self, provider: &str) -> Arc<MemoryQueue> {
        self.queues
            .entry(provider.to_owned())
            .or_default()
            .value()
            .clone()
    }
}

#[async_trait::async_trait]
impl DeliveryQueues for MemoryQueues {
    fn queue(&self, provider: &str) -> Arc<dyn ProviderQueue> {
        self.memory_queue(provider)
    }

    async fn queues(&self) -> Result<Vec<(String, Arc<dyn ProviderQueue>)>, StorageError> {
        Ok(self
            .queues
            .iter()
            .map(|entry| {
                let queue: Arc<dyn ProviderQueue> = entry.value().clone();
                (entry.key().clone(), queue)
            })
            .collect())
    }
}
