//! Provider request streams: one queue per provider system, shared by all its
//! connections (competing consumers). A delivery is leased to a connection (or
//! to a pull) until it is acknowledged; an expired lease, a dropped connection
//! or a "not accepted, resend" puts it back, and after `max_attempts` leases it
//! stops (a dead letter).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dashmap::DashMap;
use shep_proto::envelope::v1::SignedEnvelope;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A queued request.
#[derive(Debug, Clone)]
pub struct Pending {
    pub message_id: String,
    pub service_id: String,
    pub correlation_id: String,
    pub envelope: Arc<SignedEnvelope>,
    /// Leases so far.
    pub attempts: u32,
    /// The test session that submitted it (`x-shep-session`), if any: only
    /// subscribers of that session (or of none) receive it.
    pub session: Option<Arc<str>>,
}

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
    dead: Vec<Pending>,
}

/// What to take from a queue.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only these services; empty for any.
    pub service_ids: Vec<String>,
    /// Only this correlation id; empty for any.
    pub correlation_id: String,
    /// Only this test session's; `None` for any.
    pub session: Option<Arc<str>>,
}

impl Filter {
    fn accepts(&self, pending: &Pending) -> bool {
        (self.service_ids.is_empty() || self.service_ids.contains(&pending.service_id))
            && (self.correlation_id.is_empty() || self.correlation_id == pending.correlation_id)
            && (self.session.is_none() || self.session == pending.session)
    }
}

/// A leased delivery handed to a consumer.
#[derive(Debug, Clone)]
pub struct Leased {
    pub pending: Pending,
    pub until: Instant,
}

/// What an acknowledgement or an expiry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Accepted by the provider.
    Delivered,
    /// Back in the queue for another attempt.
    Requeued,
    /// Refused without resend.
    NotDelivered,
    /// Gave up after too many attempts.
    Stopped { attempts: u32 },
}

/// One provider's queue.
#[derive(Debug, Default)]
pub struct ProviderQueue {
    state: Mutex<QueueState>,
    changed: Notify,
}

impl ProviderQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until the queue changes (new work, freed credit). Create the
    /// future, then check the queue, then await it, so no wake-up is lost.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Appends a request.
    pub fn push(&self, pending: Pending) {
        self.lock().ready.push_back(pending);
        self.changed.notify_waiters();
    }

    /// Leases the next matching request to `connection` if it has credit left
    /// (`max_in_flight`), or to a pull when `connection` is `None`.
    pub fn take(
        &self,
        connection: Option<u64>,
        max_in_flight: usize,
        filter: &Filter,
        lease: Duration,
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
        let until = Instant::now() + lease;
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

    fn release_credit(state: &mut QueueState, connection: Option<u64>) {
        if let Some(id) = connection
            && let Some(count) = state.in_flight.get_mut(&id)
        {
            *count = count.saturating_sub(1);
        }
    }

    fn retry_or_stop(state: &mut QueueState, pending: Pending, max_attempts: u32) -> Settled {
        if pending.attempts >= max_attempts {
            let attempts = pending.attempts;
            state.dead.push(pending);
            Settled::Stopped { attempts }
        } else {
            // To the front: it was next before it was leased.
            state.ready.push_front(pending);
            Settled::Requeued
        }
    }

    /// Settles `message_id` as the provider acknowledged it. Returns `None`
    /// when the queue holds no such message (unknown, or already settled).
    pub fn acknowledge(
        &self,
        message_id: &str,
        accepted: bool,
        resend: bool,
        max_attempts: u32,
    ) -> Option<Settled> {
        let mut state = self.lock();
        let pending = match state.leased.remove(message_id) {
            Some(lease) => {
                Self::release_credit(&mut state, lease.connection);
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
            Self::retry_or_stop(&mut state, pending, max_attempts)
        } else {
            Settled::NotDelivered
        };
        drop(state);
        self.changed.notify_waiters();
        Some(settled)
    }

    /// Returns the leases of a closed connection to the queue.
    pub fn release_connection(&self, connection: u64, max_attempts: u32) -> Vec<(String, Settled)> {
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
                outcomes.push((
                    id,
                    Self::retry_or_stop(&mut state, lease.pending, max_attempts),
                ));
            }
        }
        state.in_flight.remove(&connection);
        drop(state);
        self.changed.notify_waiters();
        outcomes
    }

    /// Requeues leases that ended before `now`.
    pub fn expire(&self, now: Instant, max_attempts: u32) -> Vec<(String, Settled)> {
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
                Self::release_credit(&mut state, lease.connection);
                outcomes.push((
                    id,
                    Self::retry_or_stop(&mut state, lease.pending, max_attempts),
                ));
            }
        }
        drop(state);
        if !outcomes.is_empty() {
            self.changed.notify_waiters();
        }
        outcomes
    }

    /// Puts a request straight into the dead letters (restored after a restart).
    pub fn push_dead(&self, pending: Pending) {
        self.lock().dead.push(pending);
    }

    /// The requests whose delivery stopped, oldest first.
    pub fn dead_letters(&self) -> Vec<Pending> {
        self.lock().dead.clone()
    }

    /// Moves a dead letter back to the front of the queue with a fresh attempt
    /// count. `false` when no such dead letter exists.
    pub fn requeue(&self, message_id: &str) -> bool {
        let mut state = self.lock();
        let Some(index) = state
            .dead
            .iter()
            .position(|pending| pending.message_id == message_id)
        else {
            return false;
        };
        let mut pending = state.dead.remove(index);
        pending.attempts = 0;
        state.ready.push_front(pending);
        drop(state);
        self.changed.notify_waiters();
        true
    }

    /// Queued, leased and dead-lettered counts.
    pub fn depth(&self) -> (usize, usize, usize) {
        let state = self.lock();
        (state.ready.len(), state.leased.len(), state.dead.len())
    }
}

/// Every provider's queue.
#[derive(Debug, Default)]
pub struct Delivery {
    queues: DashMap<String, Arc<ProviderQueue>>,
}

impl Delivery {
    /// The queue of `provider`, created on first use.
    pub fn queue(&self, provider: &str) -> Arc<ProviderQueue> {
        self.queues
            .entry(provider.to_owned())
            .or_default()
            .value()
            .clone()
    }

    /// Every queue with its provider id.
    pub fn queues(&self) -> Vec<(String, Arc<ProviderQueue>)> {
        self.queues
            .iter()
            .map(|entry| (entry.key().clone(), entry.value().clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(30);

    fn pending(id: &str, service: &str) -> Pending {
        Pending {
            message_id: id.to_owned(),
            service_id: service.to_owned(),
            correlation_id: String::new(),
            envelope: Arc::new(SignedEnvelope::default()),
            attempts: 0,
            session: None,
        }
    }

    #[tokio::test]
    async fn competing_consumers_share_one_queue_within_their_credit() {
        let queue = ProviderQueue::default();
        for id in ["a", "b", "c"] {
            queue.push(pending(id, "svc"));
        }
        let any = Filter::default();
        let first = queue.take(Some(1), 1, &any, LEASE).unwrap();
        assert!(
            queue.take(Some(1), 1, &any, LEASE).is_none(),
            "credit used up"
        );
        let second = queue.take(Some(2), 1, &any, LEASE).unwrap();
        assert_ne!(first.pending.message_id, second.pending.message_id);
        assert_eq!(
            queue.acknowledge(&first.pending.message_id, true, false, 5),
            Some(Settled::Delivered)
        );
        assert_eq!(
            queue
                .take(Some(1), 1, &any, LEASE)
                .unwrap()
                .pending
                .message_id,
            "c"
        );
    }

    #[tokio::test]
    async fn filters_select_by_service() {
        let queue = ProviderQueue::default();
        queue.push(pending("a", "one"));
        queue.push(pending("b", "two"));
        let two = Filter {
            service_ids: vec!["two".into()],
            ..Filter::default()
        };
        assert_eq!(
            queue.take(None, 0, &two, LEASE).unwrap().pending.message_id,
            "b"
        );
        assert!(queue.take(None, 0, &two, LEASE).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn expired_leases_are_redelivered_then_stopped() {
        let queue = ProviderQueue::default();
        queue.push(pending("a", "svc"));
        let any = Filter::default();
        let lease = Duration::from_millis(100);
        for attempt in 1..=2 {
            let leased = queue.take(Some(1), 8, &any, lease).unwrap();
            assert_eq!(leased.pending.attempts, attempt);
            tokio::time::advance(Duration::from_millis(150)).await;
            let outcome = queue.expire(Instant::now(), 2);
            let expected = if attempt < 2 {
                Settled::Requeued
            } else {
                Settled::Stopped { attempts: 2 }
            };
            assert_eq!(outcome, vec![("a".to_owned(), expected)]);
        }
        assert_eq!(queue.depth(), (0, 0, 1));
        assert_eq!(queue.dead_letters()[0].message_id, "a");
        assert!(queue.requeue("a"));
        assert!(!queue.requeue("a"));
        let again = queue.take(Some(1), 8, &any, lease).unwrap();
        assert_eq!(again.pending.attempts, 1, "a requeued letter starts over");
    }

    #[tokio::test]
    async fn a_closed_connection_gives_its_leases_back() {
        let queue = ProviderQueue::default();
        queue.push(pending("a", "svc"));
        let any = Filter::default();
        queue.take(Some(7), 8, &any, LEASE).unwrap();
        let outcome = queue.release_connection(7, 5);
        assert_eq!(outcome, vec![("a".to_owned(), Settled::Requeued)]);
        let again = queue.take(Some(8), 8, &any, LEASE).unwrap();
        assert_eq!(again.pending.attempts, 2);
    }

    #[tokio::test]
    async fn not_accepted_without_resend_is_final_and_unknown_acks_are_none() {
        let queue = ProviderQueue::default();
        queue.push(pending("a", "svc"));
        queue.take(Some(1), 8, &Filter::default(), LEASE).unwrap();
        assert_eq!(
            queue.acknowledge("a", false, false, 5),
            Some(Settled::NotDelivered)
        );
        assert_eq!(queue.acknowledge("a", true, false, 5), None);
        assert_eq!(queue.depth(), (0, 0, 0));
    }
}
