//! Applications and their status events on the shared stream: writes are
//! publishes checked against the subject's last sequence, reads come from
//! this node's replica.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use prost::Message as _;
use shep_proto::gateway::v1::{Application, StatusEvent};
use shep_proto::provider::v1::ReportReceipt;
use tokio::sync::broadcast;

use super::{Log, PublishFailure, untoken};
use crate::envelope::SubjectId;
use crate::storage::StorageError;
use crate::storage::application::{
    ApplicationRecord, ApplicationStore, Inserted, Read, Update, WatchTarget,
};
use crate::storage::journal::{Entry, Record, Ticket};
use crate::storage::memory::MemoryStore;
use crate::storage::memory::NullJournal;

/// How many times an update runs again after losing a race to another node
/// before it gives up.
const MAX_RACES: usize = 64;

/// The application store of the JetStream backend.
#[derive(Debug)]
pub struct JetStreamStore {
    log: Log,
    /// What the stream says, applied in stream order.
    replica: MemoryStore,
    /// Per application: the stream sequence of its last message, which the
    /// next change must name to be stored.
    last: DashMap<String, u64>,
}

fn encode(entry: Entry) -> Vec<u8> {
    Record {
        entry: Some(entry),
        ..Record::default()
    }
    .encode_to_vec()
}

impl JetStreamStore {
    pub(crate) fn new(log: Log) -> Self {
        Self {
            log,
            replica: MemoryStore::new(Arc::new(NullJournal)),
            last: DashMap::new(),
        }
    }

    /// Applies a message of `<prefix>.app.<token>` at `sequence`.
    pub(crate) fn apply(
        &self,
        token: &str,
        entry: Entry,
        sequence: u64,
    ) -> Result<(), StorageError> {
        let message_id = untoken(token).ok_or_else(|| {
            StorageError::backend(
                "apply a stream message",
                format!("bad subject token `{token}`"),
            )
        })?;
        self.replica.follow(entry, sequence)?;
        self.last.insert(message_id, sequence);
        Ok(())
    }

    /// Applies a tombstone of `<prefix>.forgotten.<token>`.
    pub(crate) fn forgotten(&self, token: &str) -> Result<(), StorageError> {
        let message_id = untoken(token).ok_or_else(|| {
            StorageError::backend(
                "apply a stream message",
                format!("bad subject token `{token}`"),
            )
        })?;
        self.replica.forget_local(&message_id);
        self.last.remove(&message_id);
        Ok(())
    }

    /// This node's replica.
    pub(crate) fn replica(&self) -> &MemoryStore {
        &self.replica
    }

    fn last_of(&self, message_id: &str) -> Option<u64> {
        self.last.get(message_id).map(|entry| *entry.value())
    }

    /// Whether the existing application `message_id` is `record` sent again.
    async fn compare(&self, record: &ApplicationRecord) -> Result<Inserted, StorageError> {
        let mut same = self.replica.with_record(&record.message_id, |existing| {
            existing.sender_id == record.sender_id && existing.body_digest == record.body_digest
        });
        if same.is_none() {
            // Stored by another node a moment ago: wait for the replica.
            self.log.catch_up().await?;
            same = self.replica.with_record(&record.message_id, |existing| {
                existing.sender_id == record.sender_id && existing.body_digest == record.body_digest
            });
        }
        Ok(match same {
            Some(true) => Inserted::Existing,
            Some(false) => Inserted::Duplicate,
            // Forgotten (purged) between the publish and now: taken anyway.
            None => Inserted::Duplicate,
        })
    }
}

#[async_trait::async_trait]
impl ApplicationStore for JetStreamStore {
    async fn insert(&self, record: ApplicationRecord) -> Result<Inserted, StorageError> {
        // A visible application is answered here; one without events may
        // have been forgotten elsewhere, so the stream decides.
        if self
            .replica
            .with_record(&record.message_id, |existing| !existing.events.is_empty())
            == Some(true)
        {
            return self.compare(&record).await;
        }
        let subject = self.log.app_subject(&record.message_id);
        let payload = encode(Entry::Accepted(record.to_journal()));
        // No `Nats-Msg-Id`: the subject's sequence check already stores one
        // acceptance per message id, for ever, and a re-send after `forget`
        // must be stored afresh, which the de-duplication window would refuse.
        match self.log.publish(subject, payload, None, Some(0)).await {
            Ok((sequence, _)) => {
                self.log.applied(sequence).await?;
                Ok(Inserted::New)
            }
            // Accepted before, here or on another node.
            Err(PublishFailure::Conflict) => self.compare(&record).await,
            Err(PublishFailure::Failed(error)) => Err(error),
        }
    }

    async fn forget(&self, message_id: &str) -> Result<(), StorageError> {
        // The tombstone tells every replica; the purge frees the id for a
        // new acceptance (the subject's sequence is 0 again).
        let (sequence, _) = self
            .log
            .publish(
                self.log.forgotten_subject(message_id),
                Vec::new(),
                None,
                None,
            )
            .await
            .map_err(|failure| match failure {
                PublishFailure::Failed(error) => error,
                PublishFailure::Conflict => {
                    StorageError::backend("forget an application", "an unexpected sequence check")
                }
            })?;
        self.log.applied(sequence).await?;
        self.log.purge(self.log.app_subject(message_id)).await
    }

    async fn accepted_visible(
        &self,
        message_id: &str,
        patience: Duration,
    ) -> Result<bool, StorageError> {
        self.replica.accepted_visible(message_id, patience).await
    }

    async fn update(
        &self,
        message_id: &str,
        update: &mut Update<'_>,
    ) -> Result<Option<(Arc<StatusEvent>, Ticket)>, StorageError> {
        for _ in 0..MAX_RACES {
            let Some(last) = self.last_of(message_id) else {
                // Accepted on another node a moment ago, or never.
                self.log.catch_up().await?;
                if self.last_of(message_id).is_none() {
                    return Err(StorageError::NotFound {
                        message_id: message_id.to_owned(),
                    });
                }
                continue;
            };
            // The update runs on a copy: what it changes is stored only
            // through the change it returns, applied from the stream.
            let Some(mut copy) = self.replica.with_record(message_id, Clone::clone) else {
                continue;
            };
            let Some(change) = update(&mut copy) else {
                return Ok(None);
            };
            let changed = crate::storage::memory::changed_entry(&copy, 0, change);
            let event_placeholder = changed.event.clone();
            let payload = encode(Entry::Changed(changed));
            match self
                .log
                .publish(self.log.app_subject(message_id), payload, None, Some(last))
                .await
            {
                Ok((sequence, _)) => {
                    self.log.applied(sequence).await?;
                    let event = self
                        .replica
                        .with_record(message_id, |record| {
                            record
                                .events
                                .iter()
                                .rev()
                                .find(|event| event.sequence == sequence)
                                .cloned()
                        })
                        .flatten()
                        .or_else(|| {
                            // Forgotten meanwhile: answer with what was stored.
                            event_placeholder.map(|mut event| {
                                event.sequence = sequence;
                                Arc::new(event)
                            })
                        })
                        .ok_or_else(|| StorageError::NotFound {
                            message_id: message_id.to_owned(),
                        })?;
                    return Ok(Some((event, Ticket::done())));
                }
                Err(PublishFailure::Conflict) => {
                    // Another node changed it first: run again on its state.
                    self.log.catch_up().await?;
                }
                Err(PublishFailure::Failed(error)) => return Err(error),
            }
        }
        Err(StorageError::backend(
            "update an application",
            format!("lost {MAX_RACES} races to other nodes in a row"),
        ))
    }

    async fn read(&self, message_id: &str, read: &mut Read<'_>) -> Result<bool, StorageError> {
        self.replica.read(message_id, read).await
    }

    async fn application(&self, message_id: &str) -> Result<Option<Application>, StorageError> {
        // Without its first event, an acceptance was never announced (its
        // node may have died mid-Submit): not an application yet.
        Ok(self
            .replica
            .application(message_id)
            .await?
            .filter(|application| !application.events.is_empty()))
    }

    async fn history(
        &self,
        subject: &SubjectId,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Application>, bool), StorageError> {
        self.replica.history(subject, offset, limit).await
    }

    async fn snapshot(
        &self,
        target: &WatchTarget,
        after: u64,
    ) -> Result<(Vec<Arc<StatusEvent>>, u64), StorageError> {
        self.replica.snapshot(target, after).await
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<StatusEvent>> {
        self.replica.subscribe()
    }

    async fn report_seen(
        &self,
        sender: &str,
        message_id: &str,
    ) -> Result<Option<([u8; 32], ReportReceipt)>, StorageError> {
        self.replica.report_seen(sender, message_id).await
    }

    async fn remember_report(
        &self,
        sender: &str,
        message_id: &str,
        digest: [u8; 32],
        receipt: ReportReceipt,
    ) -> Result<(), StorageError> {
        // Every node learns it from the change the report caused; this node
        // knows it already.
        self.replica
            .remember_report(sender, message_id, digest, receipt)
            .await
    }
}
