use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::storage::Accepted;
use crate::storage::conformance::Backend;

/// A journal file of its own, removed with it.
struct TempJournal(PathBuf);

impl TempJournal {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "shep-journal-{name}-{}-{}.redb",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        Self(path)
    }
}

impl Drop for TempJournal {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[async_trait::async_trait]
impl Backend for TempJournal {
    async fn open(&self) -> Storage {
        open(&self.0).expect("opening the journal")
    }
}

crate::storage_conformance_tests!(
    #[tokio::test(start_paused = true)]
    || TempJournal::new("conformance")
);

fn accepted(id: &str) -> Entry {
    Entry::Accepted(Accepted {
        message_id: id.to_owned(),
        ..Accepted::default()
    })
}

/// The message id of every log record, in order.
fn logged_ids(journal: &RedbJournal) -> Vec<String> {
    journal
        .read(|transaction| {
            let last = tables::indexed(transaction)?;
            (1..=last)
                .map(|sequence| {
                    Ok(match tables::record(transaction, sequence)?.entry {
                        Some(Entry::Accepted(accepted)) => accepted.message_id,
                        _ => String::new(),
                    })
                })
                .collect()
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_survive_a_reopen_in_order() {
    let file = TempJournal::new("reopen");
    {
        let journal = RedbJournal::open(&file.0, &Options::default()).unwrap();
        assert!(logged_ids(&journal).is_empty());
        let tickets: Vec<Ticket> = (0..100)
            .map(|index| journal.append(accepted(&index.to_string())))
            .collect();
        for ticket in tickets {
            ticket.durable().await.unwrap();
        }
        journal.close().await;
    }
    let journal = RedbJournal::open(&file.0, &Options::default()).unwrap();
    let expected: Vec<String> = (0..100).map(|index: i32| index.to_string()).collect();
    assert_eq!(logged_ids(&journal), expected);
    journal.close().await;
    assert!(matches!(
        journal.append(accepted("late")).durable().await,
        Err(StorageError::Stopped)
    ));
}

/// Writes `count` records to a new journal at `file`.
async fn journal_of(file: &TempJournal, count: usize) {
    let journal = RedbJournal::open(&file.0, &Options::default()).unwrap();
    let tickets: Vec<Ticket> = (0..count)
        .map(|index| journal.append(accepted(&index.to_string())))
        .collect();
    for ticket in tickets {
        ticket.durable().await.unwrap();
    }
    journal.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_record_breaks_the_chain() {
    let file = TempJournal::new("tamper");
    journal_of(&file, 5).await;
    assert_eq!(verify_file(&file.0).unwrap(), 5);
    tamper(&file.0, 3).unwrap();
    let error = verify_file(&file.0).unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::Corrupt {
                sequence: 3,
                problem: Corruption::Edited
            }
        ),
        "{error}"
    );
    assert!(error.to_string().starts_with("record 3: "), "{error}");
    let refused = open(&file.0).expect_err("opened an edited journal");
    assert!(
        matches!(refused, StorageError::Corrupt { sequence: 3, .. }),
        "{refused}"
    );
}

/// A start checks the chain's last records only, so it takes the same time
/// on any journal; an older edit is `verify_file`'s to find.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_checks_the_end_of_the_chain_and_verify_all_of_it() {
    let file = TempJournal::new("tail");
    let count = TAIL_CHECK as usize + 2;
    journal_of(&file, count).await;
    tamper(&file.0, count as u64).unwrap();
    let refused = open(&file.0).expect_err("opened a journal with an edited last record");
    assert!(
        matches!(refused, StorageError::Corrupt { sequence, .. } if sequence == count as u64),
        "{refused}"
    );

    let file = TempJournal::new("tail-old");
    journal_of(&file, count).await;
    tamper(&file.0, 2).unwrap();
    open(&file.0)
        .expect("an edit before the checked end does not stop a start")
        .close()
        .await;
    let error = verify_file(&file.0).unwrap_err();
    assert!(
        matches!(error, StorageError::Corrupt { sequence: 2, .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_become_visible_once_committed() {
    let file = TempJournal::new("visible");
    let storage = open(&file.0).unwrap();
    assert!(storage.is_durable());
    let mut live = storage.store.subscribe();
    let record = crate::storage::conformance::sample_application();
    let message_id = record.message_id.clone();
    assert_eq!(
        storage.store.insert(record).await.unwrap(),
        crate::storage::Inserted::New
    );
    let (event, ticket) = storage
        .store
        .record(&message_id, |_| {
            Ok::<_, StorageError>(crate::storage::Change::default())
        })
        .await
        .unwrap();
    // Published by the writer after the commit, before the ticket resolves.
    ticket.durable().await.unwrap();
    assert_eq!(live.try_recv().unwrap().sequence, event.sequence);
    assert!(
        storage
            .store
            .accepted_visible(&message_id, std::time::Duration::ZERO)
            .await
            .unwrap()
    );
    storage.close().await;
}

/// A journal written by a gateway from before the index tables (the log
/// alone) is indexed at its first start: its application, events, History,
/// queue and resume sequence come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_without_indexes_is_indexed_at_its_first_start() {
    use shep_proto::envelope::v1::ApplicationStatus;

    let file = TempJournal::new("log-only");
    let record = crate::storage::conformance::sample_application();
    let change = crate::storage::Change {
        status: ApplicationStatus::Accepted,
        ..crate::storage::Change::default()
    };
    let first = Record::chained(1, Vec::new(), Entry::Accepted(record.to_journal()));
    let second = Record::chained(
        2,
        first.hash.clone(),
        Entry::Changed(crate::storage::memory::changed_entry(&record, 1, change)),
    );
    {
        let database = Database::create(&file.0).unwrap();
        let transaction = database.begin_write().unwrap();
        {
            let mut log = transaction.open_table(tables::JOURNAL).unwrap();
            for written in [&first, &second] {
                log.insert(written.sequence, written.encode_to_vec().as_slice())
                    .unwrap();
            }
        }
        transaction.commit().unwrap();
    }

    let storage = open(&file.0).expect("an older journal opens");
    let view = storage
        .store
        .application(&record.message_id)
        .await
        .unwrap()
        .expect("indexed");
    assert_eq!(view.events.len(), 1);
    let (page, more) = storage.store.history(&record.subject, 0, 10).await.unwrap();
    assert_eq!((page.len(), more), (1, false));
    assert_eq!(
        storage
            .delivery
            .queue(&record.provider_id)
            .depth()
            .await
            .unwrap(),
        (1, 0, 0),
        "still to deliver"
    );
    let (event, ticket) = storage
        .store
        .record(&record.message_id, |_| {
            Ok::<_, StorageError>(crate::storage::Change::default())
        })
        .await
        .unwrap();
    ticket.durable().await.unwrap();
    assert_eq!(event.sequence, 2, "the sequence resumes after the log's");
    storage.close().await;
    assert_eq!(
        verify_file(&file.0).unwrap(),
        3,
        "the two logged, and the change"
    );
}

/// An insert whose Submit went away before recording anything leaves
/// nothing behind: not in memory, and a re-send is new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_insert_leaves_nothing() {
    let file = TempJournal::new("abandon");
    let storage = open(&file.0).unwrap();
    let record = crate::storage::conformance::sample_application();
    let id = record.message_id.clone();
    assert_eq!(
        storage.store.insert(record.clone()).await.unwrap(),
        crate::storage::Inserted::New
    );
    assert!(storage.store.application(&id).await.unwrap().is_some());
    storage.store.abandon(&id);
    assert!(storage.store.application(&id).await.unwrap().is_none());
    assert_eq!(
        storage.store.insert(record).await.unwrap(),
        crate::storage::Inserted::New,
        "a re-send is accepted afresh"
    );
    storage.close().await;
}
