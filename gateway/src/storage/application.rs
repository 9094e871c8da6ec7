//! Applications and their status events: the records, and the trait of the
//! store that keeps them.

use std::sync::Arc;
use std::time::Duration;

use shep_proto::envelope::v1::{ApplicationStatus, SignedEnvelope};
use shep_proto::gateway::v1::{Application, MessageState, StatusEvent};
use shep_proto::provider::v1::ReportReceipt;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::StorageError;
use super::journal::{Accepted, Ticket};
use crate::calendar::Deadline;
use crate::envelope::SubjectId;
use crate::lifecycle::is_open;

/// Converts a time to a protobuf timestamp.
pub fn timestamp(time: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.unix_timestamp(),
        nanos: time.nanosecond() as i32,
    }
}

/// One application as the gateway tracks it.
#[derive(Debug, Clone)]
pub struct ApplicationRecord {
    pub message_id: String,
    pub service_id: String,
    pub subject: SubjectId,
    pub channel: i32,
    pub sender_id: String,
    pub provider_id: String,
    pub accepted_at: OffsetDateTime,
    pub delivery_state: MessageState,
    pub status: ApplicationStatus,
    pub registration_number: String,
    pub expected_at: Option<OffsetDateTime>,
    pub deadline: Option<Deadline>,
    pub test: bool,
    pub events: Vec<Arc<StatusEvent>>,
    /// The envelope exactly as received, for delivery.
    pub envelope: Arc<SignedEnvelope>,
    /// SHA-256 of the body, for idempotent re-sends.
    pub body_digest: [u8; 32],
    pub session_id: String,
    pub correlation_id: String,
    /// The service deadline counted from acceptance (the due time until the
    /// provider registers it with its own `expected_at`).
    pub due_at: Option<OffsetDateTime>,
    /// The test session (`x-shep-session`) it was submitted in, whose clock
    /// it follows; empty for the global clock.
    pub test_session: String,
}

impl ApplicationRecord {
    /// The journal's form of the application as accepted.
    pub(crate) fn to_journal(&self) -> Accepted {
        Accepted {
            message_id: self.message_id.clone(),
            service_id: self.service_id.clone(),
            subject: Some(self.subject.to_proto()),
            channel: self.channel,
            sender_id: self.sender_id.clone(),
            provider_id: self.provider_id.clone(),
            accepted_at_nanos: self.accepted_at.unix_timestamp_nanos() as i64,
            deadline: self
                .deadline
                .map(|deadline| deadline.to_string())
                .unwrap_or_default(),
            test: self.test,
            envelope: Some((*self.envelope).clone()),
            body_digest: self.body_digest.to_vec(),
            session_id: self.session_id.clone(),
            correlation_id: self.correlation_id.clone(),
            test_session: self.test_session.clone(),
            due_at_nanos: self
                .due_at
                .map_or(0, |due| due.unix_timestamp_nanos() as i64),
        }
    }

    /// The application as accepted, from its journal form.
    pub(crate) fn from_journal(accepted: Accepted) -> Result<Self, StorageError> {
        let unrestorable = |problem, source: Option<super::Source>| StorageError::Unrestorable {
            message_id: accepted.message_id.clone(),
            problem,
            source,
        };
        let subject = SubjectId::from_proto(accepted.subject.as_ref())
            .map_err(|error| unrestorable("an invalid subject", Some(Arc::new(error))))?;
        let accepted_at =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(accepted.accepted_at_nanos))
                .map_err(|error| {
                    unrestorable("an invalid acceptance time", Some(Arc::new(error)))
                })?;
        let deadline = if accepted.deadline.is_empty() {
            None
        } else {
            Some(accepted.deadline.parse::<Deadline>().map_err(|problem| {
                unrestorable("an invalid deadline", Some(Arc::from(Box::from(problem))))
            })?)
        };
        let body_digest = accepted
            .body_digest
            .as_slice()
            .try_into()
            .map_err(|_| unrestorable("a body digest that is not 32 bytes", None))?;
        let due_at = (accepted.due_at_nanos != 0)
            .then(|| OffsetDateTime::from_unix_timestamp_nanos(i128::from(accepted.due_at_nanos)))
            .transpose()
            .map_err(|error| unrestorable("an invalid due time", Some(Arc::new(error))))?;
        Ok(Self {
            subject,
            due_at,
            test_session: accepted.test_session,
            channel: accepted.channel,
            accepted_at,
            delivery_state: MessageState::OnDelivery,
            status: ApplicationStatus::Accepted,
            registration_number: String::new(),
            expected_at: None,
            deadline,
            test: accepted.test,
            events: Vec::new(),
            envelope: Arc::new(accepted.envelope.unwrap_or_default()),
            body_digest,
            message_id: accepted.message_id,
            service_id: accepted.service_id,
            sender_id: accepted.sender_id,
            provider_id: accepted.provider_id,
            session_id: accepted.session_id,
            correlation_id: accepted.correlation_id,
        })
    }

    /// The API view of the application.
    pub fn to_proto(&self, now: OffsetDateTime) -> Application {
        Application {
            message_id: self.message_id.clone(),
            service_id: self.service_id.clone(),
            subject: Some(self.subject.to_proto()),
            channel: self.channel,
            sender_id: self.sender_id.clone(),
            provider_id: self.provider_id.clone(),
            accepted_at: Some(timestamp(self.accepted_at)),
            delivery_state: self.delivery_state as i32,
            status: self.status as i32,
            registration_number: self.registration_number.clone(),
            expected_at: self.expected_at.map(timestamp),
            overdue: self.due().is_some_and(|due| due < now),
            events: self.events.iter().map(|event| (**event).clone()).collect(),
            test: self.test,
            due_at: self.due().map(timestamp),
            test_session: self.test_session.clone(),
        }
    }

    /// When the current step is due, while one is open: the centre's day to
    /// inform the applicant after a return (kept in `expected_at`), the
    /// provider's `expected_at` once registered, before that the service
    /// deadline counted from acceptance.
    pub fn due(&self) -> Option<OffsetDateTime> {
        if !is_open(self.status) {
            return None;
        }
        self.expected_at.or(self.due_at)
    }
}

/// A status change to record: everything of a `StatusEvent` but its sequence.
#[derive(Debug, Default, Clone)]
pub struct Change {
    pub status: ApplicationStatus,
    pub notification: String,
    pub registration_number: String,
    pub expected_at: Option<OffsetDateTime>,
    pub reason: String,
    pub result: Option<shep_proto::envelope::v1::SignedDocument>,
    pub reported_by: String,
    /// The provider report that caused the change, for idempotent re-sends.
    pub report: Option<ReportKey>,
    /// When it happened, on the application's clock; `None`: now, on the
    /// real clock.
    pub occurred_at: Option<OffsetDateTime>,
    /// An overdue mark rather than a change of status.
    pub overdue: bool,
}

/// A provider report, by who sent it and its id, with its body digest.
#[derive(Debug, Clone)]
pub struct ReportKey {
    pub sender: String,
    pub message_id: String,
    pub digest: [u8; 32],
}

/// What a watcher asked for.
#[derive(Debug, Clone)]
pub enum WatchTarget {
    Subject(SubjectId),
    Message(String),
    /// Every application a consumer system sent.
    Sender(String),
}

/// The key a sender's applications are indexed under, beside subjects'
/// (`iin:…`, `bin:…`), which it cannot collide with.
pub fn sender_key(sender: &str) -> String {
    format!("sender:{sender}")
}

impl WatchTarget {
    /// Whether `event` belongs to this target.
    pub fn matches(&self, event: &StatusEvent) -> bool {
        match self {
            Self::Message(id) => &event.message_id == id,
            Self::Sender(id) => &event.sender_id == id,
            Self::Subject(subject) => event.subject.as_ref() == Some(&subject.to_proto()),
        }
    }
}

/// The outcome of inserting an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A new application.
    New,
    /// The same sender sent the same body under this id before.
    Existing,
    /// The id is taken by another body or another sender: message ids are
    /// unique across senders.
    Duplicate,
}

/// A change to an application, run by [`ApplicationStore::update`]: `None`
/// declines it.
pub type Update<'a> = dyn FnMut(&mut ApplicationRecord) -> Option<Change> + Send + 'a;

/// A read of an application, run by [`ApplicationStore::read`].
pub type Read<'a> = dyn FnMut(&ApplicationRecord) + Send + 'a;

/// Applications, their status events and the idempotency keys of Submit and
/// Report: what `GetStatus`, `History` and `Watch` answer from, the same on
/// every node that shares the backend.
///
/// Ordering: every recorded event takes the next gateway-wide sequence
/// number (a JetStream backend: the stream sequence), and events reach the
/// live feed in sequence order. An event is visible (snapshots, the feed,
/// [`accepted_visible`](Self::accepted_visible)) only once durable, so nobody
/// sees a change that a crash could take back.
#[async_trait::async_trait]
pub trait ApplicationStore: std::fmt::Debug + Send + Sync {
    /// Inserts a new application, keyed by its message id alone (unique
    /// across senders). The same sender re-sending the same body finds
    /// [`Inserted::Existing`]; any other body or sender [`Inserted::Duplicate`].
    /// The acceptance becomes durable no later than the application's first
    /// recorded event.
    async fn insert(&self, record: ApplicationRecord) -> Result<Inserted, StorageError>;

    /// Forgets an application whose acceptance could not be made durable, so
    /// that a re-send is accepted afresh.
    async fn forget(&self, message_id: &str) -> Result<(), StorageError>;

    /// The Submit that inserted `message_id` went away (its caller cancelled)
    /// before recording the application's first change. A backend that holds
    /// such an insert only in memory drops it, so it neither stays there nor
    /// blocks a re-send; by default nothing happens (JetStream's reconciler
    /// finishes what was published).
    fn abandon(&self, _message_id: &str) {}

    /// Waits until the application has a visible (durable) event, up to
    /// `patience`; `false` when it has none by then.
    async fn accepted_visible(
        &self,
        message_id: &str,
        patience: Duration,
    ) -> Result<bool, StorageError>;

    /// Runs `update` on the application and records the change it returns as
    /// the next status event, with the application's state right after it.
    /// Returns the event and a ticket to await before telling anyone the
    /// change happened, or `None` when `update` declined (on its last call: a
    /// backend may run it again after a concurrent change). Decline before
    /// changing anything: what a declining update changed may or may not stay.
    async fn update(
        &self,
        message_id: &str,
        update: &mut Update<'_>,
    ) -> Result<Option<(Arc<StatusEvent>, Ticket)>, StorageError>;

    /// Runs `read` once on the application; `false` when there is none.
    async fn read(&self, message_id: &str, read: &mut Read<'_>) -> Result<bool, StorageError>;

    /// The API view of one application.
    async fn application(&self, message_id: &str) -> Result<Option<Application>, StorageError>;

    /// The subject's applications, newest first: `limit` of them after
    /// `offset`, and whether more remain.
    async fn history(
        &self,
        subject: &SubjectId,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Application>, bool), StorageError>;

    /// A consistent snapshot for a watcher: the visible events of `target`
    /// with `after < sequence <= upto`, in order, and `upto`, the last
    /// sequence visible when the snapshot began. Every later event reaches a
    /// receiver that [`subscribe`](Self::subscribe)d before the call.
    async fn snapshot(
        &self,
        target: &WatchTarget,
        after: u64,
    ) -> Result<(Vec<Arc<StatusEvent>>, u64), StorageError>;

    /// Subscribes to visible events, in sequence order. Subscribe before
    /// taking a snapshot.
    fn subscribe(&self) -> broadcast::Receiver<Arc<StatusEvent>>;

    /// A report applied before under this (sender, message id), if any: its
    /// body digest and the receipt it got.
    async fn report_seen(
        &self,
        sender: &str,
        message_id: &str,
    ) -> Result<Option<([u8; 32], ReportReceipt)>, StorageError>;

    /// Remembers an applied report for idempotent re-sends. (The change it
    /// caused carries its key too, so it survives a restart with the change.)
    async fn remember_report(
        &self,
        sender: &str,
        message_id: &str,
        digest: [u8; 32],
        receipt: ReportReceipt,
    ) -> Result<(), StorageError>;
}

// === impl dyn ApplicationStore ===

impl<'s> dyn ApplicationStore + 's {
    /// Applies `update` to the application and records the change it returns
    /// as a status event ([`ApplicationStore::update`]); a refusal comes back
    /// as it was returned. Await the ticket before telling anyone.
    pub async fn record<E>(
        &self,
        message_id: &str,
        mut update: impl FnMut(&mut ApplicationRecord) -> Result<Change, E> + Send,
    ) -> Result<(Arc<StatusEvent>, Ticket), E>
    where
        E: From<StorageError> + Send,
    {
        let mut refused = None;
        let outcome = self
            .update(message_id, &mut |record| match update(record) {
                Ok(change) => Some(change),
                Err(error) => {
                    refused = Some(error);
                    None
                }
            })
            .await?;
        match (outcome, refused) {
            (Some(recorded), _) => Ok(recorded),
            (None, Some(refusal)) => Err(refusal),
            // A backend that declines without asking has no such application.
            (None, None) => Err(E::from(StorageError::NotFound {
                message_id: message_id.to_owned(),
            })),
        }
    }

    /// Runs `read` on the application; `None` when there is none.
    pub async fn with<T: Send>(
        &self,
        message_id: &str,
        read: impl FnOnce(&ApplicationRecord) -> T + Send,
    ) -> Result<Option<T>, StorageError> {
        let mut read = Some(read);
        let mut value = None;
        self.read(message_id, &mut |record| {
            if let Some(read) = read.take() {
                value = Some(read(record));
            }
        })
        .await?;
        Ok(value)
    }
}
