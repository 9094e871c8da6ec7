//! The redb tables of the embedded backend and how each journal entry lands
//! in them.
//!
//! The journal table is the hash-chained log of every entry (the audit log
//! `shep journal verify` checks). The other tables are indexes derived from
//! it, written in the same transaction as the records they come from, so
//! they are never behind the log: the applications with their events (but
//! not their envelope, which stays in the log record of the acceptance), the
//! subjects' applications and events, the requests still to deliver and the
//! provider reports' keys. The gateway reads through them on demand instead
//! of replaying the log into memory.
//!
//! Applications are keyed by where their acceptance is in the log, so the
//! rows a commit touches (new applications, and the changes that follow them
//! within moments) sit together at the end of the table; only the id index,
//! written once per application, takes a random place.

use std::collections::HashMap;

use prost::Message;
use redb::{ReadTransaction, ReadableTable as _, Table, TableDefinition, WriteTransaction};
use shep_proto::envelope::v1::{ApplicationStatus, SignedEnvelope};
use shep_proto::gateway::v1::{MessageState, StatusEvent};
use shep_proto::provider::v1::ReportReceipt;
use time::OffsetDateTime;

use crate::envelope::SubjectId;
use crate::storage::journal::{Accepted, Changed, Entry, Record};
use crate::storage::{ApplicationRecord, Corruption, StorageError};

/// Sequence -> [`Record`]: the hash-chained log.
pub(super) const JOURNAL: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("journal");
/// Message id -> log sequence of its acceptance.
const IDS: TableDefinition<'_, &str, u64> = TableDefinition::new("ids");
/// Log sequence of the acceptance -> [`Row`].
const APPLICATIONS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("applications");
/// (subject key, event sequence) -> the application's acceptance: a
/// subject's events in order.
const SUBJECT_EVENTS: TableDefinition<'_, (&str, u64), u64> =
    TableDefinition::new("subject_events");
/// (subject key, log sequence of the acceptance) -> (): History.
const SUBJECTS: TableDefinition<'_, (&str, u64), ()> = TableDefinition::new("subjects");
/// Log sequence of the acceptance -> whether delivery stopped: what is on
/// delivery or a dead letter, in the order accepted.
const OUTSTANDING: TableDefinition<'_, u64, bool> = TableDefinition::new("outstanding");
/// (report sender, report message id) -> [`StoredReport`].
const REPORTS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("reports");
/// Counters: [`INDEXED`] and [`SEQUENCE`].
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// The last log record the index tables include.
const INDEXED: &str = "indexed";
/// The last status event sequence given out.
const SEQUENCE: &str = "sequence";

/// An application as stored: its acceptance without the envelope (which is
/// in the log record the row is keyed by), its state after its last event
/// and its events.
#[derive(Clone, PartialEq, Message)]
struct Row {
    #[prost(message, optional, tag = "1")]
    accepted: Option<Accepted>,
    #[prost(int32, tag = "3")]
    delivery_state: i32,
    #[prost(int32, tag = "4")]
    status: i32,
    #[prost(string, tag = "5")]
    registration_number: String,
    #[prost(int64, tag = "6")]
    expected_at_secs: i64,
    /// In sequence order; none means the acceptance was never receipted.
    #[prost(message, repeated, tag = "7")]
    events: Vec<StatusEvent>,
}

/// A provider report applied: its body digest and the receipt it got.
#[derive(Clone, PartialEq, Message)]
pub(super) struct StoredReport {
    #[prost(bytes = "vec", tag = "1")]
    pub(super) digest: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub(super) receipt: Option<ReportReceipt>,
}

fn read_failed<E>(operation: &'static str) -> impl FnOnce(E) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |error| StorageError::backend(operation, error)
}

fn undecodable(sequence: u64) -> impl FnOnce(prost::DecodeError) -> StorageError {
    move |error| StorageError::Corrupt {
        sequence,
        problem: Corruption::Undecodable(error),
    }
}

fn unrestorable(message_id: &str, problem: &'static str) -> StorageError {
    StorageError::Unrestorable {
        message_id: message_id.to_owned(),
        problem,
        source: None,
    }
}

/// The subject key of an acceptance, when its subject is valid.
fn subject_key(accepted: &Accepted) -> Option<String> {
    SubjectId::from_proto(accepted.subject.as_ref())
        .ok()
        .map(|subject| subject.key())
}

// === Writing ===

/// The tables open in one write transaction.
pub(super) struct Tables<'t> {
    journal: Table<'t, u64, &'static [u8]>,
    ids: Table<'t, &'static str, u64>,
    applications: Table<'t, u64, &'static [u8]>,
    subject_events: Table<'t, (&'static str, u64), u64>,
    subjects: Table<'t, (&'static str, u64), ()>,
    outstanding: Table<'t, u64, bool>,
    reports: Table<'t, (&'static str, &'static str), &'static [u8]>,
    meta: Table<'t, &'static str, u64>,
    /// Rows changed in this transaction by message id, written once by
    /// [`Tables::finish`]: an application accepted and receipted in one
    /// group commit is encoded and stored once, not read back and rewritten.
    rows: HashMap<String, (u64, Row)>,
    /// The last record applied, written by `finish`.
    indexed: Option<u64>,
    /// The last event sequence (read once from [`META`]), and whether this
    /// transaction raised it.
    sequence: Option<u64>,
    sequence_raised: bool,
}

impl<'t> Tables<'t> {
    /// Opens (creating) every table in `transaction`.
    pub(super) fn open(transaction: &'t WriteTransaction) -> Result<Self, redb::TableError> {
        Ok(Self {
            journal: transaction.open_table(JOURNAL)?,
            ids: transaction.open_table(IDS)?,
            applications: transaction.open_table(APPLICATIONS)?,
            subject_events: transaction.open_table(SUBJECT_EVENTS)?,
            subjects: transaction.open_table(SUBJECTS)?,
            outstanding: transaction.open_table(OUTSTANDING)?,
            reports: transaction.open_table(REPORTS)?,
            meta: transaction.open_table(META)?,
            rows: HashMap::new(),
            indexed: None,
            sequence: None,
            sequence_raised: false,
        })
    }

    /// Writes what this transaction kept back (changed rows, the counters);
    /// call it once, after the last record and before the commit.
    pub(super) fn finish(mut self) -> Result<(), redb::StorageError> {
        for (at, row) in self.rows.into_values() {
            self.applications
                .insert(at, row.encode_to_vec().as_slice())?;
        }
        if let Some(indexed) = self.indexed {
            self.meta.insert(INDEXED, indexed)?;
        }
        if let (Some(sequence), true) = (self.sequence, self.sequence_raised) {
            self.meta.insert(SEQUENCE, sequence)?;
        }
        Ok(())
    }

    /// Appends `record` to the log and applies its entry to the indexes.
    pub(super) fn append(&mut self, record: &Record) -> Result<(), redb::StorageError> {
        self.journal
            .insert(record.sequence, record.encode_to_vec().as_slice())?;
        self.apply(record)
    }

    /// Applies a logged record to the indexes (appending, or indexing a log
    /// written before they existed).
    pub(super) fn apply(&mut self, record: &Record) -> Result<(), redb::StorageError> {
        match &record.entry {
            Some(Entry::Accepted(accepted)) => self.accept(accepted, record.sequence)?,
            Some(Entry::Changed(changed)) => self.change(changed)?,
            None => {}
        }
        self.indexed = Some(record.sequence);
        Ok(())
    }

    /// The row of `message_id` and where it is, taken out of this
    /// transaction's changed rows (put it back with `self.rows.insert`).
    fn take_row(&mut self, message_id: &str) -> Result<Option<(u64, Row)>, redb::StorageError> {
        if let Some(changed) = self.rows.remove(message_id) {
            return Ok(Some(changed));
        }
        let Some(at) = self.ids.get(message_id)?.map(|at| at.value()) else {
            return Ok(None);
        };
        Ok(self
            .applications
            .get(at)?
            .and_then(|value| Row::decode(value.value()).ok())
            .map(|row| (at, row)))
    }

    fn accept(&mut self, accepted: &Accepted, at: u64) -> Result<(), redb::StorageError> {
        if let Some((earlier_at, earlier)) = self.take_row(&accepted.message_id)? {
            if !earlier.events.is_empty() {
                // Accepted once: a later acceptance under the id changes nothing.
                self.rows
                    .insert(accepted.message_id.clone(), (earlier_at, earlier));
                return Ok(());
            }
            // Never receipted (an older gateway logged the acceptance first),
            // then accepted afresh: the new one replaces it.
            if let Some(key) = earlier.accepted.as_ref().and_then(subject_key) {
                self.subjects.remove((key.as_str(), earlier_at))?;
            }
            self.outstanding.remove(earlier_at)?;
            self.applications.remove(earlier_at)?;
        }
        let row = Row {
            accepted: Some(Accepted {
                envelope: None,
                message_id: accepted.message_id.clone(),
                service_id: accepted.service_id.clone(),
                subject: accepted.subject.clone(),
                channel: accepted.channel,
                sender_id: accepted.sender_id.clone(),
                provider_id: accepted.provider_id.clone(),
                accepted_at_nanos: accepted.accepted_at_nanos,
                deadline: accepted.deadline.clone(),
                test: accepted.test,
                body_digest: accepted.body_digest.clone(),
                session_id: accepted.session_id.clone(),
                correlation_id: accepted.correlation_id.clone(),
                test_session: accepted.test_session.clone(),
                due_at_nanos: accepted.due_at_nanos,
            }),
            delivery_state: MessageState::OnDelivery as i32,
            status: ApplicationStatus::Accepted as i32,
            ..Row::default()
        };
        self.ids.insert(accepted.message_id.as_str(), at)?;
        if let Some(key) = subject_key(accepted) {
            self.subjects.insert((key.as_str(), at), ())?;
        }
        self.outstanding.insert(at, false)?;
        self.rows.insert(accepted.message_id.clone(), (at, row));
        Ok(())
    }

    fn change(&mut self, changed: &Changed) -> Result<(), redb::StorageError> {
        let Some(event) = &changed.event else {
            return Ok(());
        };
        let id = event.message_id.as_str();
        let Some((at, mut row)) = self.take_row(id)? else {
            // The log is checked at open; a change of nothing has no index.
            tracing::warn!(message_id = id, "a change of an application never accepted");
            return Ok(());
        };
        row.delivery_state = changed.delivery_state;
        row.status = changed.status;
        row.registration_number
            .clone_from(&changed.registration_number);
        row.expected_at_secs = changed.expected_at_secs;
        // Changes of one application may be logged out of sequence order.
        let place = row
            .events
            .partition_point(|earlier| earlier.sequence < event.sequence);
        row.events.insert(place, event.clone());
        if let Some(key) = row.accepted.as_ref().and_then(subject_key) {
            self.subject_events
                .insert((key.as_str(), event.sequence), at)?;
        }
        // A sender's events share the index under a key no subject has.
        if let Some(accepted) = row.accepted.as_ref().filter(|a| !a.sender_id.is_empty()) {
            let key = crate::storage::sender_key(&accepted.sender_id);
            self.subject_events
                .insert((key.as_str(), event.sequence), at)?;
        }
        match MessageState::try_from(changed.delivery_state) {
            Ok(MessageState::OnDelivery) => {
                self.outstanding.insert(at, false)?;
            }
            Ok(MessageState::DeliveryStopped) => {
                self.outstanding.insert(at, true)?;
            }
            _ => {
                self.outstanding.remove(at)?;
            }
        }
        if !changed.report_message_id.is_empty() {
            let report = StoredReport {
                digest: changed.report_digest.clone(),
                receipt: Some(ReportReceipt {
                    message_id: changed.report_message_id.clone(),
                    correlation_id: id.to_owned(),
                    status: event.status,
                    sequence: event.sequence,
                }),
            };
            self.remember(&changed.report_sender, &changed.report_message_id, &report)?;
        }
        let last = match self.sequence {
            Some(last) => last,
            None => self.meta.get(SEQUENCE)?.map_or(0, |value| value.value()),
        };
        self.sequence = Some(last.max(event.sequence));
        self.sequence_raised |= event.sequence > last;
        self.rows.insert(id.to_owned(), (at, row));
        Ok(())
    }

    /// Remembers a provider report's key.
    pub(super) fn remember(
        &mut self,
        sender: &str,
        message_id: &str,
        report: &StoredReport,
    ) -> Result<(), redb::StorageError> {
        self.reports
            .insert((sender, message_id), report.encode_to_vec().as_slice())?;
        Ok(())
    }
}

// === Reading ===

/// A counter of [`META`]; 0 before any.
fn counter(transaction: &ReadTransaction, name: &str) -> Result<u64, StorageError> {
    let meta = transaction
        .open_table(META)
        .map_err(read_failed("open the journal's counters"))?;
    Ok(meta
        .get(name)
        .map_err(read_failed("read a journal counter"))?
        .map_or(0, |value| value.value()))
}

/// The last log record the indexes include.
pub(super) fn indexed(transaction: &ReadTransaction) -> Result<u64, StorageError> {
    counter(transaction, INDEXED)
}

/// The last event sequence given out.
pub(super) fn last_sequence(transaction: &ReadTransaction) -> Result<u64, StorageError> {
    counter(transaction, SEQUENCE)
}

/// The log record at `sequence`.
pub(super) fn record(transaction: &ReadTransaction, sequence: u64) -> Result<Record, StorageError> {
    let journal = transaction
        .open_table(JOURNAL)
        .map_err(read_failed("open the journal table"))?;
    let value = journal
        .get(sequence)
        .map_err(read_failed("read a journal record"))?
        .ok_or(StorageError::Corrupt {
            sequence,
            problem: Corruption::Absent,
        })?;
    Record::decode(value.value()).map_err(undecodable(sequence))
}

fn row_at(transaction: &ReadTransaction, at: u64) -> Result<Option<Row>, StorageError> {
    let applications = transaction
        .open_table(APPLICATIONS)
        .map_err(read_failed("open the applications table"))?;
    let Some(value) = applications
        .get(at)
        .map_err(read_failed("read an application"))?
    else {
        return Ok(None);
    };
    Row::decode(value.value())
        .map(Some)
        .map_err(undecodable(at))
}

/// The row of `message_id` and where it is.
fn row(
    transaction: &ReadTransaction,
    message_id: &str,
) -> Result<Option<(u64, Row)>, StorageError> {
    let ids = transaction
        .open_table(IDS)
        .map_err(read_failed("open the ids table"))?;
    let Some(at) = ids
        .get(message_id)
        .map_err(read_failed("read an application id"))?
        .map(|at| at.value())
    else {
        return Ok(None);
    };
    Ok(row_at(transaction, at)?.map(|row| (at, row)))
}

/// Who sent the receipted application `message_id` and its body digest.
pub(super) fn identity(
    transaction: &ReadTransaction,
    message_id: &str,
) -> Result<Option<(String, Vec<u8>)>, StorageError> {
    Ok(row(transaction, message_id)?
        .filter(|(_, row)| !row.events.is_empty())
        .and_then(|(_, row)| row.accepted)
        .map(|accepted| (accepted.sender_id, accepted.body_digest)))
}

/// Whether the application has a durable event.
pub(super) fn receipted(
    transaction: &ReadTransaction,
    message_id: &str,
) -> Result<bool, StorageError> {
    Ok(row(transaction, message_id)?.is_some_and(|(_, row)| !row.events.is_empty()))
}

/// The receipted application stored at `at`, with its events and its
/// envelope (from the log record of its acceptance).
fn application_at(
    transaction: &ReadTransaction,
    at: u64,
    row: Row,
) -> Result<ApplicationRecord, StorageError> {
    let accepted = row.accepted.ok_or(StorageError::Corrupt {
        sequence: at,
        problem: Corruption::Absent,
    })?;
    let mut record = ApplicationRecord::from_journal(accepted)?;
    record.envelope = std::sync::Arc::new(envelope(transaction, at)?);
    record.delivery_state =
        MessageState::try_from(row.delivery_state).unwrap_or(MessageState::OnDelivery);
    record.status = ApplicationStatus::try_from(row.status).unwrap_or(ApplicationStatus::Accepted);
    record.registration_number = row.registration_number;
    record.expected_at = (row.expected_at_secs != 0)
        .then(|| OffsetDateTime::from_unix_timestamp(row.expected_at_secs).ok())
        .flatten();
    record.events = row.events.into_iter().map(std::sync::Arc::new).collect();
    Ok(record)
}

/// The receipted application `message_id` with its events and its envelope.
pub(super) fn application(
    transaction: &ReadTransaction,
    message_id: &str,
) -> Result<Option<ApplicationRecord>, StorageError> {
    match row(transaction, message_id)? {
        Some((at, row)) if !row.events.is_empty() => application_at(transaction, at, row).map(Some),
        _ => Ok(None),
    }
}

/// The envelope of the acceptance logged at `at`.
fn envelope(transaction: &ReadTransaction, at: u64) -> Result<SignedEnvelope, StorageError> {
    match record(transaction, at)?.entry {
        Some(Entry::Accepted(accepted)) => Ok(accepted.envelope.unwrap_or_default()),
        _ => Err(StorageError::Corrupt {
            sequence: at,
            problem: Corruption::Absent,
        }),
    }
}

/// The events of `message_id` with `after < sequence <= upto`, in order.
pub(super) fn events_of(
    transaction: &ReadTransaction,
    message_id: &str,
    after: u64,
    upto: u64,
) -> Result<Vec<StatusEvent>, StorageError> {
    Ok(row(transaction, message_id)?
        .map(|(_, row)| row.events)
        .unwrap_or_default()
        .into_iter()
        .filter(|event| event.sequence > after && event.sequence <= upto)
        .collect())
}

/// The events of the subject `key` with `after < sequence <= upto`, in order.
pub(super) fn events_of_subject(
    transaction: &ReadTransaction,
    key: &str,
    after: u64,
    upto: u64,
) -> Result<Vec<StatusEvent>, StorageError> {
    if after >= upto {
        return Ok(Vec::new());
    }
    let index = transaction
        .open_table(SUBJECT_EVENTS)
        .map_err(read_failed("open the subject events table"))?;
    let mut found = Vec::new();
    // Consecutive events of one application read its row once.
    let mut current: Option<(u64, Row)> = None;
    for item in index
        .range((key, after + 1)..=(key, upto))
        .map_err(read_failed("read a subject's events"))?
    {
        let (key, at) = item.map_err(read_failed("read a subject's event"))?;
        let (sequence, at) = (key.value().1, at.value());
        if current
            .as_ref()
            .is_none_or(|(current_at, _)| *current_at != at)
        {
            current = row_at(transaction, at)?.map(|row| (at, row));
        }
        if let Some(event) = current
            .as_ref()
            .and_then(|(_, row)| row.events.iter().find(|event| event.sequence == sequence))
        {
            found.push(event.clone());
        }
    }
    Ok(found)
}

/// The subject `key`'s receipted applications, newest first: `limit` ids
/// after `offset`, and whether more remain.
pub(super) fn history(
    transaction: &ReadTransaction,
    key: &str,
    offset: usize,
    limit: usize,
) -> Result<(Vec<String>, bool), StorageError> {
    let subjects = transaction
        .open_table(SUBJECTS)
        .map_err(read_failed("open the subjects table"))?;
    let mut ids = Vec::with_capacity(limit);
    let mut more = false;
    for item in subjects
        .range((key, 0)..=(key, u64::MAX))
        .map_err(read_failed("read a history"))?
        .rev()
        .skip(offset)
    {
        let (entry, _) = item.map_err(read_failed("read a history entry"))?;
        if ids.len() == limit {
            more = true;
            break;
        }
        let at = entry.value().1;
        if let Some(accepted) = row_at(transaction, at)?.and_then(|row| row.accepted) {
            ids.push(accepted.message_id);
        }
    }
    Ok((ids, more))
}

/// A provider report applied before, if any.
pub(super) fn report(
    transaction: &ReadTransaction,
    sender: &str,
    message_id: &str,
) -> Result<Option<([u8; 32], ReportReceipt)>, StorageError> {
    let reports = transaction
        .open_table(REPORTS)
        .map_err(read_failed("open the reports table"))?;
    let Some(value) = reports
        .get((sender, message_id))
        .map_err(read_failed("read a report key"))?
    else {
        return Ok(None);
    };
    let stored = StoredReport::decode(value.value())
        .map_err(|_| unrestorable(message_id, "an undecodable report key"))?;
    let digest = stored
        .digest
        .as_slice()
        .try_into()
        .map_err(|_| unrestorable(message_id, "a report digest that is not 32 bytes"))?;
    Ok(Some((digest, stored.receipt.unwrap_or_default())))
}

/// What is on delivery or stopped, in the order accepted: the application
/// and whether delivery stopped.
pub(super) fn outstanding(
    transaction: &ReadTransaction,
) -> Result<Vec<(ApplicationRecord, bool)>, StorageError> {
    let outstanding = transaction
        .open_table(OUTSTANDING)
        .map_err(read_failed("open the outstanding table"))?;
    let mut found = Vec::new();
    for item in outstanding
        .iter()
        .map_err(read_failed("read the outstanding requests"))?
    {
        let (at, stopped) = item.map_err(read_failed("read an outstanding request"))?;
        let at = at.value();
        // Accepted but never receipted: nobody was told, nothing to deliver.
        let Some(row) = row_at(transaction, at)?.filter(|row| !row.events.is_empty()) else {
            continue;
        };
        found.push((application_at(transaction, at, row)?, stopped.value()));
    }
    Ok(found)
}
