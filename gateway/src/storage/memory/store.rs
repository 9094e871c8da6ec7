//! Applications, their status events and the live event feed, in memory,
//! every change written to a journal.
//!
//! Ordering: every event gets a gateway-wide sequence number and is appended
//! to the journal under one lock, while its application's lock is held, so
//! the journal's order is the sequence order. Events are published (appended
//! to their application, broadcast) in that order too: at once without a
//! durable journal, else by the journal's writer after each commit, so a
//! watcher that subscribes and then snapshots never misses or reorders an
//! event, and nobody sees a change that a crash could take back.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dashmap::DashMap;
use shep_proto::envelope::v1::ApplicationStatus;
use shep_proto::gateway::v1::{Application, MessageState, StatusEvent};
use shep_proto::provider::v1::ReportReceipt;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::envelope::SubjectId;
use crate::storage::StorageError;
use crate::storage::application::{
    ApplicationRecord, ApplicationStore, Change, Inserted, Read, ReportKey, Update, WatchTarget,
    sender_key, timestamp,
};
use crate::storage::journal::{Changed, Entry, Journal, Ticket};

/// How many live events a slow watcher may fall behind before it re-reads
/// from the store.
const LIVE_BUFFER: usize = 4096;

type Shared = Arc<Mutex<ApplicationRecord>>;

fn lock(record: &Shared) -> MutexGuard<'_, ApplicationRecord> {
    // A poisoned lock means a panic mid-update elsewhere; the record itself is
    // still consistent (updates are single assignments), so keep serving.
    record
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Makes status events visible: appends them to their application and
/// broadcasts them, in sequence order.
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

/// The application store, in memory.
#[derive(Debug)]
pub struct MemoryStore {
    applications: Arc<DashMap<String, Shared>>,
    by_subject: DashMap<String, Vec<String>>,
    /// The next sequence number; journal appends happen under it, so the
    /// journal's order is the sequence order.
    sequence: Mutex<u64>,
    publisher: Publisher,
    /// Provider reports already applied: (sender, report message_id) -> (body digest, receipt).
    reports: DashMap<(String, String), ([u8; 32], ReportReceipt)>,
    /// Where every change goes, in the order it is applied here.
    journal: Arc<dyn Journal>,
}

impl MemoryStore {
    /// An empty store writing to `journal`. With a durable journal, events
    /// become visible once committed.
    pub fn new(journal: Arc<dyn Journal>) -> Self {
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

    fn get(&self, message_id: &str) -> Option<Shared> {
        self.applications
            .get(message_id)
            .map(|entry| entry.value().clone())
    }

    fn visible(&self, message_id: &str) -> bool {
        self.get(message_id)
            .is_some_and(|shared| !lock(&shared).events.is_empty())
    }

    /// Applies one journal entry as a replica following a log does: an
    /// acceptance adds the application, a change sets its state and adds its
    /// event (returned rather than published), remembering the report that
    /// caused it.
    fn apply_entry(&self, entry: Entry) -> Result<Option<Arc<StatusEvent>>, StorageError> {
        match entry {
            Entry::Accepted(accepted) => {
                let record = ApplicationRecord::from_journal(accepted)?;
                if let Some(existing) = self.get(&record.message_id) {
                    if !lock(&existing).events.is_empty() {
                        // Accepted once: a replica meets its acceptance once.
                        return Ok(None);
                    }
                    // Forgotten elsewhere and accepted afresh.
                    self.forget_now(&record.message_id);
                }
                self.index(&record);
                self.applications
                    .insert(record.message_id.clone(), Arc::new(Mutex::new(record)));
                Ok(None)
            }
            Entry::Changed(changed) => {
                let event = changed
                    .event
                    .clone()
                    .ok_or_else(|| StorageError::Unrestorable {
                        message_id: String::new(),
                        problem: "a change without its event",
                        source: None,
                    })?;
                let shared =
                    self.get(&event.message_id)
                        .ok_or_else(|| StorageError::Unrestorable {
                            message_id: event.message_id.clone(),
                            problem: "a change of an application never accepted",
                            source: None,
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
                    let digest: [u8; 32] =
                        changed.report_digest.as_slice().try_into().map_err(|_| {
                            StorageError::Unrestorable {
                                message_id: event.message_id.clone(),
                                problem: "a report digest that is not 32 bytes",
                                source: None,
                            }
                        })?;
                    self.reports.insert(
                        (
                            changed.report_sender.clone(),
                            changed.report_message_id.clone(),
                        ),
                        (
                            digest,
                            ReportReceipt {
                                message_id: changed.report_message_id,
                                correlation_id: event.message_id.clone(),
                                status: event.status,
                                sequence: event.sequence,
                            },
                        ),
                    );
                }
                Ok(Some(Arc::new(event)))
            }
        }
    }

    /// Applies an entry that another writer made durable at `sequence` (a
    /// replica following a shared log): a change's event takes that sequence
    /// and is published at once. Entries must come in sequence order.
    pub(crate) fn follow(&self, mut entry: Entry, sequence: u64) -> Result<(), StorageError> {
        if let Entry::Changed(changed) = &mut entry
            && let Some(event) = &mut changed.event
        {
            event.sequence = sequence;
        }
        if let Some(event) = self.apply_entry(entry)? {
            let mut next = self
                .sequence
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            *next = (*next).max(sequence);
            if let Some(shared) = self.get(&event.message_id) {
                let mut record = lock(&shared);
                self.publisher.publish_locked(&mut record, event);
            }
        }
        Ok(())
    }

    /// Runs `visit` on every application (in no order).
    pub(crate) fn for_each(&self, mut visit: impl FnMut(&ApplicationRecord)) {
        for entry in self.applications.iter() {
            visit(&lock(entry.value()));
        }
    }

    /// Runs `read` on the application, if there is one.
    pub(crate) fn with_record<T>(
        &self,
        message_id: &str,
        read: impl FnOnce(&ApplicationRecord) -> T,
    ) -> Option<T> {
        self.get(message_id).map(|shared| read(&lock(&shared)))
    }

    /// Forgets an application here only (a replica whose log dropped it).
    pub(crate) fn forget_local(&self, message_id: &str) {
        self.forget_now(message_id);
    }

    fn insert_now(&self, record: ApplicationRecord) -> Inserted {
        use dashmap::mapref::entry::Entry as Slot;
        match self.applications.entry(record.message_id.clone()) {
            Slot::Occupied(existing) => {
                let shared = existing.get().clone();
                drop(existing);
                let original = lock(&shared);
                if original.sender_id == record.sender_id
                    && original.body_digest == record.body_digest
                {
                    Inserted::Existing
                } else {
                    Inserted::Duplicate
                }
            }
            Slot::Vacant(vacant) => {
                // Queued before its first event, which the caller awaits.
                let _ = self.journal.append(Entry::Accepted(record.to_journal()));
                self.index(&record);
                vacant.insert(Arc::new(Mutex::new(record)));
                Inserted::New
            }
        }
    }

    /// Indexes `record` by its subject and by its sender (for a sender's Watch).
    fn index(&self, record: &ApplicationRecord) {
        for key in [record.subject.key(), sender_key(&record.sender_id)] {
            self.by_subject
                .entry(key)
                .or_default()
                .push(record.message_id.clone());
        }
    }

    fn forget_now(&self, message_id: &str) {
        if let Some((_, shared)) = self.applications.remove(message_id) {
            let keys = {
                let record = lock(&shared);
                [record.subject.key(), sender_key(&record.sender_id)]
            };
            for key in keys {
                if let Some(mut ids) = self.by_subject.get_mut(&key) {
                    ids.retain(|id| id != message_id);
                }
            }
        }
    }

    fn update_now(
        &self,
        message_id: &str,
        update: &mut Update<'_>,
    ) -> Result<Option<(Arc<StatusEvent>, Ticket)>, StorageError> {
        let shared = self.get(message_id).ok_or_else(|| StorageError::NotFound {
            message_id: message_id.to_owned(),
        })?;
        let mut record = lock(&shared);
        let Some(change) = update(&mut record) else {
            return Ok(None);
        };
        let mut sequence = self
            .sequence
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *sequence += 1;
        let changed = changed_entry(&record, *sequence, change);
        let event = Arc::new(changed.event.clone().unwrap_or_default());
        // Under the sequence lock: the journal's order is the sequence order,
        // and so is the order in which its writer publishes after commits.
        let ticket = self.journal.append(Entry::Changed(changed));
        if !self.journal.is_durable() {
            // Nothing to wait for: visible at once, still in sequence order.
            self.publisher.publish_locked(&mut record, event.clone());
        }
        drop(sequence);
        Ok(Some((event, ticket)))
    }

    fn snapshot_now(&self, target: &WatchTarget, after: u64) -> (Vec<Arc<StatusEvent>>, u64) {
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
            WatchTarget::Sender(sender) => self
                .by_subject
                .get(&sender_key(sender))
                .map(|ids| ids.clone())
                .unwrap_or_default(),
        };
        // Every event up to `upto` is in its application by the time its
        // lock is taken here, so none is missed.
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

    fn history_now(
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
}

/// The journal entry of `change`, made of `record` (as the update left it)
/// at `sequence`.
pub(crate) fn changed_entry(
    record: &ApplicationRecord,
    sequence: u64,
    mut change: Change,
) -> Changed {
    let report = change.report.take().unwrap_or(ReportKey {
        sender: String::new(),
        message_id: String::new(),
        digest: [0; 32],
    });
    Changed {
        event: Some(event_of(record, sequence, change)),
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
    }
}

/// The status event `change` makes of `record` at `sequence`.
fn event_of(record: &ApplicationRecord, sequence: u64, change: Change) -> StatusEvent {
    StatusEvent {
        sequence,
        message_id: record.message_id.clone(),
        service_id: record.service_id.clone(),
        subject: Some(record.subject.to_proto()),
        status: change.status as i32,
        occurred_at: Some(timestamp(
            change.occurred_at.unwrap_or_else(OffsetDateTime::now_utc),
        )),
        notification: change.notification,
        registration_number: change.registration_number,
        expected_at: change.expected_at.map(timestamp),
        reason: change.reason,
        result: change.result,
        reported_by: change.reported_by,
        overdue: change.overdue,
        sender_id: record.sender_id.clone(),
    }
}

#[async_trait::async_trait]
impl ApplicationStore for MemoryStore {
    async fn insert(&self, record: ApplicationRecord) -> Result<Inserted, StorageError> {
        Ok(self.insert_now(record))
    }

    async fn forget(&self, message_id: &str) -> Result<(), StorageError> {
        self.forget_now(message_id);
        Ok(())
    }

    fn abandon(&self, message_id: &str) {
        // Nothing of it was recorded: as if it had never been inserted.
        if self
            .get(message_id)
            .is_some_and(|shared| lock(&shared).events.is_empty())
        {
            self.forget_now(message_id);
        }
    }

    async fn accepted_visible(
        &self,
        message_id: &str,
        patience: Duration,
    ) -> Result<bool, StorageError> {
        let mut live = self.publisher.live.subscribe();
        let wait = async {
            loop {
                if self.visible(message_id) {
                    return true;
                }
                match live.recv().await {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return self.visible(message_id),
                }
            }
        };
        Ok(tokio::time::timeout(patience, wait).await.unwrap_or(false))
    }

    async fn update(
        &self,
        message_id: &str,
        update: &mut Update<'_>,
    ) -> Result<Option<(Arc<StatusEvent>, Ticket)>, StorageError> {
        self.update_now(message_id, update)
    }

    async fn read(&self, message_id: &str, read: &mut Read<'_>) -> Result<bool, StorageError> {
        Ok(self
            .get(message_id)
            .map(|shared| read(&lock(&shared)))
            .is_some())
    }

    async fn application(&self, message_id: &str) -> Result<Option<Application>, StorageError> {
        Ok(self
            .get(message_id)
            .map(|shared| lock(&shared).to_proto(OffsetDateTime::now_utc())))
    }

    async fn history(
        &self,
        subject: &SubjectId,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Application>, bool), StorageError> {
        Ok(self.history_now(subject, offset, limit))
    }

    async fn snapshot(
        &self,
        target: &WatchTarget,
        after: u64,
    ) -> Result<(Vec<Arc<StatusEvent>>, u64), StorageError> {
        Ok(self.snapshot_now(target, after))
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<StatusEvent>> {
        self.publisher.live.subscribe()
    }

    async fn report_seen(
        &self,
        sender: &str,
        message_id: &str,
    ) -> Result<Option<([u8; 32], ReportReceipt)>, StorageError> {
        Ok(self
            .reports
            .get(&(sender.to_owned(), message_id.to_owned()))
            .map(|entry| entry.value().clone()))
    }

    async fn remember_report(
        &self,
        sender: &str,
        message_id: &str,
        digest: [u8; 32],
        receipt: ReportReceipt,
    ) -> Result<(), StorageError> {
        self.reports.insert(
            (sender.to_owned(), message_id.to_owned()),
            (digest, receipt),
        );
        Ok(())
    }
}
