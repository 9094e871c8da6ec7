//! Provider request queues: one per provider system, shared by all its
//! connections (competing consumers). A delivery is leased to a connection
//! (or to a pull) until it is acknowledged; an expired lease, a dropped
//! connection or a "not accepted, resend" puts it back, and after
//! `max_attempts` leases it stops (a dead letter).

use std::sync::Arc;
use std::time::Duration;

use shep_proto::envelope::v1::SignedEnvelope;
use tokio::sync::futures::Notified;
use tokio::time::Instant;

use super::StorageError;

/// The most dead letters a provider's queue keeps: memory stays bounded when
/// a provider refuses everything for days.
pub const MAX_DEAD_LETTERS: usize = 10_000;

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
    /// Whether `pending` is one to take.
    pub fn accepts(&self, pending: &Pending) -> bool {
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

/// What an acknowledgement, an expiry or a closed connection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Accepted by the provider.
    Delivered,
    /// Back in the queue for another attempt.
    Requeued,
    /// Refused without resend.
    NotDelivered,
    /// Gave up after too many attempts: now a dead letter.
    Stopped { attempts: u32 },
}

/// Every provider's queue.
#[async_trait::async_trait]
pub trait DeliveryQueues: std::fmt::Debug + Send + Sync {
    /// The queue of `provider`, created on first use. A handle: a networked
    /// backend may create what lies behind it on its first operation.
    fn queue(&self, provider: &str) -> Arc<dyn ProviderQueue>;

    /// Every queue with its provider id.
    async fn queues(&self) -> Result<Vec<(String, Arc<dyn ProviderQueue>)>, StorageError>;
}

/// One provider's queue.
///
/// Contract (the conformance suite checks it): requests are taken in the
/// order pushed, skipping those the filter refuses; a take counts an attempt
/// and leases the request until `lease` has passed; a connection holds at
/// most `max_in_flight` leases; an acknowledgement or a report settles a
/// request once; an expired or released lease goes back to the front of the
/// queue until the lease that used the last of `max_attempts`, which stops it
/// (a dead letter); a requeued dead letter starts over from attempt 0.
/// Connection ids are local to one gateway node.
#[async_trait::async_trait]
pub trait ProviderQueue: std::fmt::Debug + Send + Sync {
    /// Resolves when the queue changes (new work, freed credit). Create the
    /// future, enable it, then take, then await it, so no wake-up is lost.
    fn changed(&self) -> Notified<'_>;

    /// Appends a request.
    async fn push(&self, pending: Pending) -> Result<(), StorageError>;

    /// Leases the next matching request to `connection` if it has credit left
    /// (`max_in_flight`), or to a pull when `connection` is `None`.
    async fn take(
        &self,
        connection: Option<u64>,
        max_in_flight: usize,
        filter: &Filter,
        lease: Duration,
    ) -> Result<Option<Leased>, StorageError>;

    /// Settles `message_id` as the provider acknowledged it. `None` when the
    /// queue holds no such request (unknown, or already settled). A late
    /// acknowledgement of a request back in the queue still settles it,
    /// rather than deliver the same request twice.
    async fn acknowledge(
        &self,
        message_id: &str,
        accepted: bool,
        resend: bool,
        max_attempts: u32,
    ) -> Result<Option<Settled>, StorageError>;

    /// Returns the leases of a closed connection to the queue.
    async fn release_connection(
        &self,
        connection: u64,
        max_attempts: u32,
    ) -> Result<Vec<(String, Settled)>, StorageError>;

    /// Ends the leases that ran out by `now`: each is requeued or stopped.
    async fn expire(
        &self,
        now: Instant,
        max_attempts: u32,
    ) -> Result<Vec<(String, Settled)>, StorageError>;

    /// The requests whose delivery stopped, oldest first.
    async fn dead_letters(&self) -> Result<Vec<Pending>, StorageError>;

    /// Moves a dead letter back to the front of the queue with a fresh
    /// attempt count. `false` when no such dead letter exists.
    async fn requeue(&self, message_id: &str) -> Result<bool, StorageError>;

    /// Queued, leased and dead-lettered counts.
    async fn depth(&self) -> Result<(usize, usize, usize), StorageError>;
}
