//! The application store of the embedded backend: reads go to the redb
//! tables; memory holds only the applications with a change not yet
//! committed (and those inserted but not yet receipted).
//!
//! Ordering: every event gets a gateway-wide sequence number and is queued
//! for the writer under one lock, while its application's lock is held, so
//! the log's order is the sequence order. The writer publishes each event
//! (into the held application, to the live feed) after its commit, in that
//! order, so a watcher that subscribes and then snapshots never misses or
//! reorders an event, and nobody sees a change a crash could take back.
//!
//! An application is held from its first change until every change queued
//! for it is settled (committed or failed); then it leaves memory and the
//! tables speak for it. Its lock is one of [`STRIPES`] mutexes by the hash of
//! its id, held across a read from the tables when it is not in memory, so
//! a change never starts from a state older than the last committed one.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use shep_proto::gateway::v1::{Application, StatusEvent};
use shep_proto::provider::v1::ReportReceipt;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::tables::{self, StoredReport};
use super::{RedbJournal, Write};
use crate::envelope::SubjectId;
use crate::storage::StorageError;
use crate::storage::application::{
    ApplicationRecord, ApplicationStore, Inserted, Read, Update, WatchTarget,
};
use crate::storage::journal::{Entry, Ticket};
use crate::storage::memory::changed_entry;

/// Locks over the applications in memory.
const STRIPES: usize = 64;
/// How many live events a slow watcher may fall behind before it re-reads
/// from the store.
const LIVE_BUFFER: usize = 4096;

/// An application in memory while changes to it are in flight.
#[derive(Debug)]
struct Held {
    record: ApplicationRecord,
    /// Log entries queued for it and not yet settled, plus one for an
    /// acceptance not yet queued.
    unsettled: usize,
    /// Whether its acceptance is queued for the log.
    logged: bool,
}

type Stripe = HashMap<String, Held>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic mid-update elsewhere; the state is still
    // consistent (updates are single assignments), so keep serving.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The live feed and how far it has published.
#[derive(Debug)]
struct Feed {
    /// The last sequence made visible.
    watermark: Mutex<u64>,
    live: broadcast::Sender<Arc<StatusEvent>>,
}

/// Applications, status events and idempotency keys in redb tables.
#[derive(Debug)]
pub struct RedbStore {
    journal: Arc<RedbJournal>,
    stripes: Arc<[Mutex<Stripe>]>,
    /// The last sequence given out; log appends happen under it.
    sequence: Mutex<u64>,
    feed: Arc<Feed>,
}

fn stripe_of(stripes: &[Mutex<Stripe>], message_id: &str) -> usize {
    let mut hasher = DefaultHasher::new();
    message_id.hash(&mut hasher);
    (hasher.finish() % stripes.len() as u64) as usize
}

fn entry_id(entry: &Entry) -> Option<&str> {
    match entry {
        Entry::Accepted(accepted) => Some(&accepted.message_id),
        Entry::Changed(changed) => changed
            .event
            .as_ref()
            .map(|event| event.message_id.as_str()),
    }
}

impl RedbStore {
    /// The store over `journal`, resuming its sequence.
    pub fn open(journal: Arc<RedbJournal>) -> Result<Self, StorageError> {
        let last = journal.read(tables::last_sequence)?;
        let stripes: Arc<[Mutex<Stripe>]> = (0..STRIPES).map(|_| Mutex::default()).collect();
        let feed = Arc::new(Feed {
            watermark: Mutex::new(last),
            live: broadcast::channel(LIVE_BUFFER).0,
        });
        let (settling, published) = (stripes.clone(), feed.clone());
        journal.on_settle(Box::new(move |entry, committed| {
            let Some(id) = entry_id(entry) else {
                return;
            };
            let mut stripe = lock(&settling[stripe_of(&settling, id)]);
            if committed
                && let Entry::Changed(changed) = entry
                && let Some(event) = &changed.event
            {
                let event = Arc::new(event.clone());
                let mut watermark = lock(&published.watermark);
                *watermark = (*watermark).max(event.sequence);
                // No receivers is fine: nobody is watching.
                let _ = published.live.send(event.clone());
                drop(watermark);
                if let Some(held) = stripe.get_mut(id) {
                    held.record.events.push(event);
                }
            }
            if let Some(held) = stripe.get_mut(id) {
                held.unsettled = held.unsettled.saturating_sub(1);
                if held.unsettled == 0 {
                    // Committed (the tables have it) or failed (they have
                    // what came before): either way they speak for it now.
                    stripe.remove(id);
                }
            }
        }));
        Ok(Self {
            journal,
            stripes,
            sequence: Mutex::new(last),
            feed,
        })
    }

    fn stripe(&self, message_id: &str) -> MutexGuard<'_, Stripe> {
        lock(&self.stripes[stripe_of(&self.stripes, message_id)])
    }

    /// Runs `read` on the application, from memory or the tables.
    fn with_record<T>(
        &self,
        message_id: &str,
        read: impl FnOnce(&ApplicationRecord) -> T,
    ) -> Result<Option<T>, StorageError> {
        let stripe = self.stripe(message_id);
        if let Some(held) = stripe.get(message_id) {
            return Ok(Some(read(&held.record)));
        }
        Ok(self
            .journal
            .read(|transaction| tables::application(transaction, message_id))?
            .map(|record| read(&record)))
    }

    fn visible(&self, message_id: &str) -> Result<bool, StorageError> {
        let stripe = self.stripe(message_id);
        if let Some(held) = stripe.get(message_id) {
            return Ok(!held.record.events.is_empty());
        }
        self.journal
            .read(|transaction| tables::receipted(transaction, message_id))
    }
}

#[async_trait::async_trait]
impl ApplicationStore for RedbStore {
    async fn insert(&self, record: ApplicationRecord) -> Result<Inserted, StorageError> {
        let same = |sender: &str, digest: &[u8]| {
            if sender == record.sender_id && digest == record.body_digest {
                Inserted::Existing
            } else {
                Inserted::Duplicate
            }
        };
        let mut stripe = self.stripe(&record.message_id);
        if let Some(held) = stripe.get(&record.message_id) {
            return Ok(same(&held.record.sender_id, &held.record.body_digest));
        }
        if let Some((sender, digest)) = self
            .journal
            .read(|transaction| tables::identity(transaction, &record.message_id))?
        {
            return Ok(same(&sender, &digest));
        }
        // Logged with its first event, so the log never holds an acceptance
        // that was not receipted.
        stripe.insert(
            record.message_id.clone(),
            Held {
                record,
                unsettled: 1,
                logged: false,
            },
        );
        Ok(Inserted::New)
    }

    async fn forget(&self, message_id: &str) -> Result<(), StorageError> {
        // What failed to commit has settled already; this drops an
        // acceptance that never got as far as the log.
        let mut stripe = self.stripe(message_id);
        if stripe.get(message_id).is_some_and(|held| !held.logged) {
            stripe.remove(message_id);
        }
        Ok(())
    }

    fn abandon(&self, message_id: &str) {
        let mut stripe = self.stripe(message_id);
        if stripe.get(message_id).is_some_and(|held| !held.logged) {
            stripe.remove(message_id);
        }
    }

    async fn accepted_visible(
        &self,
        message_id: &str,
        patience: Duration,
    ) -> Result<bool, StorageError> {
        let mut live = self.feed.live.subscribe();
        let wait = async {
            loop {
                if self.visible(message_id)? {
                    return Ok(true);
                }
                match live.recv().await {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return self.visible(message_id),
                }
            }
        };
        tokio::time::timeout(patience, wait)
            .await
            .unwrap_or(Ok(false))
    }

    async fn update(
        &self,
        message_id: &str,
        update: &mut Update<'_>,
    ) -> Result<Option<(Arc<StatusEvent>, Ticket)>, StorageError> {
        let mut stripe = self.stripe(message_id);
        if !stripe.contains_key(message_id) {
            let record = self
                .journal
                .read(|transaction| tables::application(transaction, message_id))?
                .ok_or_else(|| StorageError::NotFound {
                    message_id: message_id.to_owned(),
                })?;
            stripe.insert(
                message_id.to_owned(),
                Held {
                    record,
                    unsettled: 0,
                    logged: true,
                },
            );
        }
        let Some(held) = stripe.get_mut(message_id) else {
            return Err(StorageError::NotFound {
                message_id: message_id.to_owned(),
            });
        };
        let Some(change) = update(&mut held.record) else {
            if held.unsettled == 0 {
                // Whatever the declined update touched goes with it.
                stripe.remove(message_id);
            }
            return Ok(None);
        };
        let mut sequence = lock(&self.sequence);
        *sequence += 1;
        let changed = changed_entry(&held.record, *sequence, change);
        let event = Arc::new(changed.event.clone().unwrap_or_default());
        let mut entries = Vec::with_capacity(2);
        if !held.logged {
            held.logged = true;
            entries.push(Entry::Accepted(held.record.to_journal()));
        }
        entries.push(Entry::Changed(changed));
        held.unsettled += 1;
        // Under the sequence lock: the log's order is the sequence order, and
        // so is the order in which the writer publishes after commits.
        let ticket = self.journal.write(Write::Entries(entries));
        drop(sequence);
        Ok(Some((event, ticket)))
    }

    async fn read(&self, message_id: &str, read: &mut Read<'_>) -> Result<bool, StorageError> {
        Ok(self
            .with_record(message_id, |record| read(record))?
            .is_some())
    }

    async fn application(&self, message_id: &str) -> Result<Option<Application>, StorageError> {
        self.with_record(message_id, |record| {
            record.to_proto(OffsetDateTime::now_utc())
        })
    }

    async fn history(
        &self,
        subject: &SubjectId,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Application>, bool), StorageError> {
        let now = OffsetDateTime::now_utc();
        let (ids, more) = self
            .journal
            .read(|transaction| tables::history(transaction, &subject.key(), offset, limit))?;
        let mut page = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(application) = self.with_record(&id, |record| record.to_proto(now))? {
                page.push(application);
            }
        }
        Ok((page, more))
    }

    async fn snapshot(
        &self,
        target: &WatchTarget,
        after: u64,
    ) -> Result<(Vec<Arc<StatusEvent>>, u64), StorageError> {
        // Every event up to the watermark is committed, so the tables hold it.
        let upto = *lock(&self.feed.watermark);
        let events = self.journal.read(|transaction| match target {
            WatchTarget::Message(id) => tables::events_of(transaction, id, after, upto),
            WatchTarget::Subject(subject) => {
                tables::events_of_subject(transaction, &subject.key(), after, upto)
            }
            WatchTarget::Sender(sender) => tables::events_of_subject(
                transaction,
                &crate::storage::sender_key(sender),
                after,
                upto,
            ),
        })?;
        Ok((events.into_iter().map(Arc::new).collect(), upto))
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<StatusEvent>> {
        self.feed.live.subscribe()
    }

    async fn report_seen(
        &self,
        sender: &str,
        message_id: &str,
    ) -> Result<Option<([u8; 32], ReportReceipt)>, StorageError> {
        self.journal
            .read(|transaction| tables::report(transaction, sender, message_id))
    }

    async fn remember_report(
        &self,
        sender: &str,
        message_id: &str,
        digest: [u8; 32],
        receipt: ReportReceipt,
    ) -> Result<(), StorageError> {
        // The change a report causes carries its key into the tables already;
        // only a report remembered without one costs a write.
        if self.report_seen(sender, message_id).await?.as_ref() == Some(&(digest, receipt.clone()))
        {
            return Ok(());
        }
        self.journal
            .write(Write::Report {
                sender: sender.to_owned(),
                message_id: message_id.to_owned(),
                report: StoredReport {
                    digest: digest.to_vec(),
                    receipt: Some(receipt),
                },
            })
            .durable()
            .await
    }
}
