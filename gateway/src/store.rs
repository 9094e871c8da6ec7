//! Applications, their status events and the live event feed, in memory.
//! (The durable journal of issue 5 replaces this behind the same operations.)
//!
//! Ordering: every event gets a gateway-wide sequence number and is broadcast
//! under one lock, while its application's lock is held, so that a watcher that
//! subscribes and then snapshots never misses or reorders an event.

use std::sync::{Arc, Mutex, MutexGuard};

use dashmap::DashMap;
use shep_proto::envelope::v1::{ApplicationStatus, SignedEnvelope};
use shep_proto::gateway::v1::{Application, MessageState, StatusEvent};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::calendar::Deadline;
use crate::envelope::SubjectId;
use crate::error::GatewayError;
use crate::journal::{Accepted, Changed, Entry, Entry as JournalEntry, Journal, Ticket};
use crate::lifecycle::is_terminal;

/// How many live events a slow watcher may fall behind before it re-reads
/// from the store.
const LIVE_BUFFER: usize = 4096;

/// Converts a time to a protobuf timestamp.
pub fn timestamp(time: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.unix_timestamp(),
        nanos: time.nanosecond() as i32,
    }
}

/// One application as the gateway tracks it.
#[derive(Debug)]
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
}

impl ApplicationRecord {
    fn to_journal(&self) -> Accepted {
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
        }
    }

    fn from_journal(accepted: Accepted) -> Result<Self, String> {
        let subject = SubjectId::from_proto(accepted.subject.as_ref())
            .map_err(|error| format!("application `{}`: {error}", accepted.message_id))?;
        Ok(Self {
            subject,
            channel: accepted.channel,
            accepted_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(
                accepted.accepted_at_nanos,
            ))
            .map_err(|error| error.to_string())?,
            delivery_state: MessageState::OnDelivery,
            status: ApplicationStatus::Accepted,
            registration_number: String::new(),
            expected_at: None,
            deadline: if accepted.deadline.is_empty() {
                None
            } else {
                Some(accepted.deadline.parse()?)
            },
            test: accepted.test,
            events: Vec::new(),
            envelope: Arc::new(accepted.envelope.unwrap_or_default()),
            body_digest: accepted
                .body_digest
                .as_slice()
                .try_into()
                .map_err(|_| "a body digest that is not 32 bytes")?,
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
            overdue: self
                .expected_at
                .is_some_and(|due| due < now && !is_terminal(self.status)),
            events: self.events.iter().map(|event| (**event).clone()).collect(),
            test: self.test,
        }
    }
}

/// A status change to record: everything of a `StatusEvent` but its sequence.
#[derive(Debug, Default)]
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
}

impl WatchTarget {
    /// Whether `event` belongs to this target.
    pub fn matches(&self, event: &StatusEvent) -> bool {
        match self {
            Self::Message(id) => &event.message_id == id,
            Self::Subject(subject) => event.subject.as_ref() == Some(&subject.to_proto()),
        }
    }
}

type Shared = Arc<Mutex<ApplicationRecord>>;

/// Makes status events visible: appends them to their application and
/// broadcasts them, in sequence order. With a durable journal this runs on the
/// journal's writer thread after each commit, so nobody sees a change that a
/// crash could take back.
#[derive(Debug, Clone)]
struct Publisher {
    applications: Arc<DashMap<String, Shared>>,
    /// The last sequence made visible; guards the order of broadcasts.
    watermark: Arc<Mutex<u64>>,
    live: broadcast::Sender<Arc<StatusEvent>>,
}

impl Publisher {
    /// Publishes `event` to `record`, whose lock the caller holds.
    fn publish_locked(&self, record: &mut ApplicationRecord, event: Arc<StatusEvent>) {
        let mut watermark = self
            .watermark
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *watermark = (*watermark).max(event.sequence);
        // No receivers is fine: nobody is watching.
        let _ = self.live.send(event.clone());
        drop(watermark);
        record.events.push(event);
    }

    fn publish(&self, event: StatusEvent) {
        let Some(shared) = self
            .applications
            .get(&event.message_id)
            .map(|entry| entry.value().clone())
        else {
            return;
        };
        let mut record = lock(&shared);
        self.publish_locked(&mut record, Arc::new(event));
    }
}

/// The application store.
#[derive(Debug)]
pub struct Store {
    applications: Arc<DashMap<String, Shared>>,
    by_subject: DashMap<String, Vec<String>>,
    /// The next sequence number; journal appends happen under it, so the
    /// journal's order is the sequence order.
    sequence: Mutex<u64>,
    publisher: Publisher,
    /// Provider reports already applied: (sender, report message_id) -> (body digest, receipt).
    reports: DashMap<(String, String), ([u8; 32], shep_proto::provider::v1::ReportReceipt)>,
    /// Where every change goes, in the order it is applied here.
    journal: Arc<Journal>,
}

impl Default for Store {
    /// A store whose journal keeps nothing.
    fn default() -> Self {
        Self::new(Arc::new(Journal::memory()))
    }
}

fn lock(record: &Shared) -> MutexGuard<'_, ApplicationRecord> {
    // A poisoned lock means a panic mid-update elsewhere; the record itself is
    // still consistent (updates are single assignments), so keep serving.
    record
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The outcome of inserting an application.
#[derive(Debug)]
pub enum Inserted {
    /// A new application.
    New(Shared),
    /// The same message was sent before: here is the original.
    Existing(Shared),
}

/// A queued request to deliver again after a restart.
#[derive(Debug)]
pub struct Undelivered {
    pub message_id: String,
    pub service_id: String,
    pub provider_id: String,
    pub correlation_id: String,
    pub envelope: Arc<SignedEnvelope>,
    /// Delivery had stopped: it goes back to the dead-letter list.
    pub stopped: bool,
}

impl Store {
    /// An empty store writing to `journal`. With a durable journal, events
    /// become visible once committed.
    pub fn new(journal: Arc<Journal>) -> Self {
        let applications = Arc::new(DashMap::new());
        let publisher = Publisher {
            applications: applications.clone(),
            watermark: Arc::new(Mutex::new(0)),
            live: broadcast::channel(LIVE_BUFFER).0,
        };
        if journal.is_durable() {
            let committed = publisher.clone();
            journal.on_commit(Box::new(move |entry| {
                if let Entry::Changed(changed) = entry
                    && let Some(event) = &changed.event
                {
                    committed.publish(event.clone());
                }
            }));
        }
        Self {
            applications,
            by_subject: DashMap::new(),
            sequence: Mutex::new(0),
            publisher,
            reports: DashMap::new(),
            journal,
        }
    }

    /// Forgets an application whose acceptance could not be made durable, so
    /// that a re-send is accepted afresh.
    pub fn forget(&self, message_id: &str) {
        if let Some((_, shared)) = self.applications.remove(message_id) {
            let key = lock(&shared).subject.key();
            if let Some(mut ids) = self.by_subject.get_mut(&key) {
                ids.retain(|id| id != message_id);
            }
        }
    }

    /// Waits until the application's acceptance is visible (durable), up to
    /// `patience`.
    pub async fn accepted_visible(&self, message_id: &str, patience: std::time::Duration) -> bool {
        let mut live = self.publisher.live.subscribe();
        let visible = || {
            self.with(message_id, |record| !record.events.is_empty())
                .unwrap_or(false)
        };
        let wait = async {
            loop {
                if visible() {
                    return true;
                }
                match live.recv().await {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return visible(),
                }
            }
        };
        tokio::time::timeout(patience, wait).await.unwrap_or(false)
    }

    /// Rebuilds the store from the journal's entries, in journal order, and
    /// returns what still waits for delivery (or sits in the dead letters).
    pub fn restore(&self, entries: Vec<Entry>) -> Result<Vec<Undelivered>, String> {
        let mut last_sequence = 0;
        for entry in entries {
            match entry {
                Entry::Accepted(accepted) => {
                    let record = ApplicationRecord::from_journal(accepted)?;
                    self.by_subject
                        .entry(record.subject.key())
                        .or_default()
                        .push(record.message_id.clone());
                    self.applications
                        .insert(record.message_id.clone(), Arc::new(Mutex::new(record)));
                }
                Entry::Changed(changed) => {
                    let event = changed.event.clone().ok_or("a change without its event")?;
                    let shared = self.get(&event.message_id).ok_or_else(|| {
                        format!("a change of unknown application `{}`", event.message_id)
                    })?;
                    let mut record = lock(&shared);
                    record.delivery_state = MessageState::try_from(changed.delivery_state)
                        .unwrap_or(MessageState::OnDelivery);
                    record.status = ApplicationStatus::try_from(changed.status)
                        .unwrap_or(ApplicationStatus::Accepted);
                    record.registration_number = changed.registration_number.clone();
                    record.expected_at = (changed.expected_at_secs != 0)
                        .then(|| OffsetDateTime::from_unix_timestamp(changed.expected_at_secs).ok())
                        .flatten();
                    if !changed.report_message_id.is_empty() {
                        let digest: [u8; 32] = changed
                            .report_digest
                            .as_slice()
                            .try_into()
                            .map_err(|_| "a report digest that is not 32 bytes")?;
                        self.reports.insert(
                            (
                                changed.report_sender.clone(),
                                changed.report_message_id.clone(),
                            ),
                            (
                                digest,
                                shep_proto::provider::v1::ReportReceipt {
                                    message_id: changed.report_message_id.clone(),
                                    correlation_id: event.message_id.clone(),
                                    status: event.status,
                                    sequence: event.sequence,
                                },
                            ),
                        );
                    }
                    last_sequence = last_sequence.max(event.sequence);
                    record.events.push(Arc::new(event));
                }
            }
        }
        *self
            .sequence
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = last_sequence;
        *self
            .publisher
            .watermark
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = last_sequence;
        let mut waiting = Vec::new();
        for entry in self.applications.iter() {
            let mut record = lock(entry.value());
            // Changes of one application may be journaled out of sequence order.
            record.events.sort_by_key(|event| event.sequence);
            let stopped = record.delivery_state == MessageState::DeliveryStopped;
            if record.delivery_state == MessageState::OnDelivery || stopped {
                waiting.push(Undelivered {
                    message_id: record.message_id.clone(),
                    service_id: record.service_id.clone(),
                    provider_id: record.provider_id.clone(),
                    correlation_id: record.correlation_id.clone(),
                    envelope: record.envelope.clone(),
                    stopped,
                });
            }
        }
        // Deliver again in the order they were accepted.
        waiting.sort_by_key(|undelivered| {
            self.with(&undelivered.message_id, |record| record.accepted_at)
        });
        Ok(waiting)
    }

    /// Inserts a new application, or returns the original when the same sender
    /// re-sends the same body. A different body under a known id is refused.
    pub fn insert(&self, record: ApplicationRecord) -> Result<Inserted, GatewayError> {
        use dashmap::mapref::entry::Entry as Slot;
        match self.applications.entry(record.message_id.clone()) {
            Slot::Occupied(existing) => {
                let shared = existing.get().clone();
                drop(existing);
                let same = {
                    let original = lock(&shared);
                    original.sender_id == record.sender_id
                        && original.body_digest == record.body_digest
                };
                if same {
                    Ok(Inserted::Existing(shared))
                } else {
                    Err(GatewayError::DuplicateMessage {
                        message_id: record.message_id,
                        sender: record.sender_id,
                    })
                }
            }
            Slot::Vacant(vacant) => {
                let subject_key = record.subject.key();
                let message_id = record.message_id.clone();
                // Queued before its first event, which the caller awaits.
                let _ = self
                    .journal
                    .append(JournalEntry::Accepted(record.to_journal()));
                let shared = Arc::new(Mutex::new(record));
                vacant.insert(shared.clone());
                self.by_subject
                    .entry(subject_key)
                    .or_default()
                    .push(message_id);
                Ok(Inserted::New(shared))
            }
        }
    }

    /// The application with this id.
    pub fn get(&self, message_id: &str) -> Option<Shared> {
        self.applications
            .get(message_id)
            .map(|entry| entry.value().clone())
    }

    /// Applies `update` to the application and records the change it returns
    /// as a status event, journaled in the order applied. `update` runs under
    /// the application's lock and may refuse the change. Await the ticket
    /// before telling anyone the change happened.
    pub fn record(
        &self,
        message_id: &str,
        update: impl FnOnce(&mut ApplicationRecord) -> Result<Change, GatewayError>,
    ) -> Result<(Arc<StatusEvent>, Ticket), GatewayError> {
        let shared = self
            .get(message_id)
            .ok_or_else(|| GatewayError::MessageNotFound(message_id.to_owned()))?;
        let mut record = lock(&shared);
        let change = update(&mut record)?;
        let mut sequence = self
            .sequence
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *sequence += 1;
        let event = Arc::new(StatusEvent {
            sequence: *sequence,
            message_id: record.message_id.clone(),
            service_id: record.service_id.clone(),
            subject: Some(record.subject.to_proto()),
            status: change.status as i32,
            occurred_at: Some(timestamp(OffsetDateTime::now_utc())),
            notification: change.notification,
            registration_number: change.registration_number,
            expected_at: change.expected_at.map(timestamp),
            reason: change.reason,
            result: change.result,
            reported_by: change.reported_by,
        });
        let report = change.report.unwrap_or(ReportKey {
            sender: String::new(),
            message_id: String::new(),
            digest: [0; 32],
        });
        // Under the sequence lock: the journal's order is the sequence order,
        // and so is the order in which its writer publishes after commits.
        let ticket = self.journal.append(JournalEntry::Changed(Changed {
            event: Some((*event).clone()),
            delivery_state: record.delivery_state as i32,
            status: record.status as i32,
            registration_number: record.registration_number.clone(),
            expected_at_secs: record
                .expected_at
                .map(OffsetDateTime::unix_timestamp)
                .unwrap_or(0),
            report_digest: if report.message_id.is_empty() {
                Vec::new()
            } else {
                report.digest.to_vec()
            },
            report_sender: report.sender,
            report_message_id: report.message_id,
        }));
        if !self.journal.is_durable() {
            // Nothing to wait for: visible at once, still in sequence order.
            self.publisher.publish_locked(&mut record, event.clone());
        }
        drop(sequence);
        Ok((event, ticket))
    }

    /// A consistent snapshot for a watcher: the events of `target` with
    /// `after < sequence <= upto`, in order, and `upto`, the last sequence
    /// published when the snapshot began. Every event up to `upto` is in its
    /// application by the time its lock is taken here, so none is missed; later
    /// ones reach a receiver subscribed before the call.
    pub fn snapshot(&self, target: &WatchTarget, after: u64) -> (Vec<Arc<StatusEvent>>, u64) {
        let upto = *self
            .publisher
            .watermark
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let ids: Vec<String> = match target {
            WatchTarget::Message(id) => vec![id.clone()],
            WatchTarget::Subject(subject) => self
                .by_subject
                .get(&subject.key())
                .map(|ids| ids.clone())
                .unwrap_or_default(),
        };
        let mut events: Vec<Arc<StatusEvent>> = ids
            .iter()
            .filter_map(|id| self.get(id))
            .flat_map(|shared| {
                lock(&shared)
                    .events
                    .iter()
                    .filter(|event| event.sequence > after && event.sequence <= upto)
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        events.sort_by_key(|event| event.sequence);
        (events, upto)
    }

    /// Subscribes to live events. Subscribe before taking a `snapshot`.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StatusEvent>> {
        self.publisher.live.subscribe()
    }

    /// The subject's applications, newest first: `limit` of them after `offset`,
    /// and whether more remain.
    pub fn history(
        &self,
        subject: &SubjectId,
        offset: usize,
        limit: usize,
    ) -> (Vec<Application>, bool) {
        let now = OffsetDateTime::now_utc();
        let ids = self
            .by_subject
            .get(&subject.key())
            .map(|ids| ids.clone())
            .unwrap_or_default();
        let page: Vec<Application> = ids
            .iter()
            .rev()
            .skip(offset)
            .take(limit)
            .filter_map(|id| self.get(id))
            .map(|shared| lock(&shared).to_proto(now))
            .collect();
        (page, ids.len() > offset + limit)
    }

    /// The API view of one application.
    pub fn application(&self, message_id: &str) -> Option<Application> {
        self.get(message_id)
            .map(|shared| lock(&shared).to_proto(OffsetDateTime::now_utc()))
    }

    /// Runs `read` on the application under its lock.
    pub fn with<T>(
        &self,
        message_id: &str,
        read: impl FnOnce(&ApplicationRecord) -> T,
    ) -> Option<T> {
        self.get(message_id).map(|shared| read(&lock(&shared)))
    }

    /// A report applied before under this (sender, message id), if any.
    pub fn report_seen(
        &self,
        sender: &str,
        message_id: &str,
    ) -> Option<([u8; 32], shep_proto::provider::v1::ReportReceipt)> {
        self.reports
            .get(&(sender.to_owned(), message_id.to_owned()))
            .map(|entry| entry.value().clone())
    }

    /// Remembers an applied report for idempotent re-sends.
    pub fn remember_report(
        &self,
        sender: &str,
        message_id: &str,
        digest: [u8; 32],
        receipt: shep_proto::provider::v1::ReportReceipt,
    ) {
        self.reports.insert(
            (sender.to_owned(), message_id.to_owned()),
            (digest, receipt),
        );
    }
}
